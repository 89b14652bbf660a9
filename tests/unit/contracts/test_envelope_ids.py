import os
import re

from engine.types import Envelope, new_id


def test_ids_are_32_hex_digits_and_do_not_repeat():
    ids = [new_id() for _ in range(20_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_envelopes_get_fresh_ids():
    made = {
        Envelope(
            correlation_id="c",
            channel="x",
            received_at="2026-01-05T10:00:00+00:00",
            content_type="text/plain",
            payload="p",
        ).id
        for _ in range(100)
    }
    assert len(made) == 100


def test_a_forked_child_does_not_repeat_its_parents_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, "".join(new_id() for _ in range(4)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = "".join(new_id() for _ in range(4))
    assert len(child) == 128
    assert child != parent
