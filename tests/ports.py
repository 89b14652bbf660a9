"""Free loopback ports for tests that start servers in child processes."""

from __future__ import annotations

import socket

_handed_out: set[int] = set()


def free_port() -> int:
    """An OS-assigned free TCP port on 127.0.0.1, never the same one twice in a
    session: the probe socket is closed before the server binds, so the OS may
    offer a just-returned port again to the next caller."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
