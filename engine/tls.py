"""TLS contexts for the engine's listeners (MLLP, HTTP) and its clients.

Every context refuses anything older than TLS 1.2. A server context with a
``ca_file`` verifies client certificates against that CA only (never the
system store: mutual TLS means "certificates from our CA"); with
``require_client_cert`` a client without one is refused during the handshake.
Keys must be unencrypted PEM: the engine runs unattended and never prompts.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.config import TlsConfig

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

PathLike = str | Path


class TlsSetupError(Exception):
    """A certificate, key or CA file cannot be used to build a TLS context."""


def _no_password() -> bytes:
    # Called by OpenSSL only for an encrypted key; without it, it would prompt on the terminal.
    raise TlsSetupError("the key file is encrypted; give an unencrypted PEM key")


def _reason(exc: ssl.SSLError) -> str:
    # OpenSSL says only "PEM lib" when a file holds no PEM block of the expected kind.
    if exc.reason is None and "PEM lib" in str(exc):
        return "not PEM data of the expected kind"
    return exc.reason or str(exc)


def _load_chain(context: ssl.SSLContext, cert_file: PathLike, key_file: PathLike | None) -> None:
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_password)
    except ssl.SSLError as exc:
        raise TlsSetupError(f"cannot load certificate and key: {_reason(exc)}") from exc
    except OSError as exc:
        raise TlsSetupError(f"cannot read certificate or key: {exc}") from exc


def _load_ca(context: ssl.SSLContext, ca_file: PathLike) -> None:
    try:
        context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise TlsSetupError(f"cannot load CA certificates: {_reason(exc)}") from exc
    except OSError as exc:
        raise TlsSetupError(f"cannot read CA file: {exc}") from exc


def server_context(
    cert_file: PathLike,
    key_file: PathLike,
    *,
    ca_file: PathLike | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """A server-side context presenting ``cert_file`` (PEM, leaf first, then any
    intermediates) with ``key_file``.

    With ``ca_file``, client certificates are verified against it: a client
    that presents none is still served unless ``require_client_cert``, which
    needs ``ca_file``. Raises ``TlsSetupError``.
    """
    if require_client_cert and ca_file is None:
        raise TlsSetupError("require_client_cert needs a ca_file to verify client certificates")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    _load_chain(context, cert_file, key_file)
    if ca_file is not None:
        _load_ca(context, ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_context(
    *,
    ca_file: PathLike | None = None,
    cert_file: PathLike | None = None,
    key_file: PathLike | None = None,
) -> ssl.SSLContext:
    """A client-side context that verifies the server's certificate and host
    name: against ``ca_file`` only when given, else the system's trust store.
    ``cert_file``/``key_file`` present a client certificate (mutual TLS).
    Raises ``TlsSetupError``.
    """
    if key_file is not None and cert_file is None:
        raise TlsSetupError("key_file given without cert_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and host name
    context.minimum_version = MINIMUM_VERSION
    if ca_file is not None:
        _load_ca(context, ca_file)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if cert_file is not None:
        _load_chain(context, cert_file, key_file)
    return context


def server_context_for(config: TlsConfig | None) -> ssl.SSLContext | None:
    """The server context a ``tls`` setting asks for; ``None`` (plain TCP) for none."""
    if config is None:
        return None
    return server_context(
        config.cert_file,
        config.key_file,
        ca_file=config.ca_file,
        require_client_cert=config.require_client_cert,
    )


__all__ = [
    "MINIMUM_VERSION",
    "TlsSetupError",
    "client_context",
    "server_context",
    "server_context_for",
]
