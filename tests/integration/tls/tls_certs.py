"""Throwaway PKI for TLS tests, made with the ``openssl`` command line: a CA,
a server certificate for 127.0.0.1/localhost, a client certificate, and a
second, unrelated CA with its own client certificate (trusted by nobody)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

_TIMEOUT_S = 30


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: certificates (``*_cert``) and their unencrypted keys (``*_key``)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path
    other_client_cert: Path
    other_client_key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(
        ["openssl", *map(str, args)], check=True, capture_output=True, timeout=_TIMEOUT_S
    )


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert, ext = directory / f"{name}.key", directory / f"{name}.pem", directory / f"{name}.ext"
    _new_key(key)
    ext.write_text(
        "basicConstraints=critical,CA:TRUE\n"
        "keyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n"
    )
    csr = directory / f"{name}.csr"
    _openssl("req", "-new", "-key", key, "-subj", f"/CN=Wardstream test {name}", "-out", csr)
    _openssl(
        "x509", "-req", "-in", csr, "-signkey", key, "-days", "2", "-extfile", ext, "-out", cert
    )
    return cert, key


def _leaf(
    directory: Path, name: str, ca: tuple[Path, Path], serial: int, extensions: str
) -> tuple[Path, Path]:
    key, cert, ext = directory / f"{name}.key", directory / f"{name}.pem", directory / f"{name}.ext"
    _new_key(key)
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n" + extensions
    )
    csr = directory / f"{name}.csr"
    _openssl("req", "-new", "-key", key, "-subj", f"/CN={name}", "-out", csr)
    ca_cert, ca_key = ca
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial", str(serial),
        "-days", "2", "-extfile", ext, "-out", cert,
    )  # fmt: skip
    return cert, key


def make_tls_files(directory: Path) -> TlsFiles:
    """Write a fresh test PKI into ``directory``; skips the test without ``openssl``."""
    if shutil.which("openssl") is None:
        pytest.skip("TLS tests need the openssl command line to make test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    other_ca = _ca(directory, "other-ca")
    server = _leaf(
        directory,
        "server",
        ca,
        2,
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    client = _leaf(directory, "client", ca, 3, "extendedKeyUsage=clientAuth\n")
    other_client = _leaf(directory, "other-client", other_ca, 2, "extendedKeyUsage=clientAuth\n")
    return TlsFiles(
        ca_cert=ca[0],
        server_cert=server[0],
        server_key=server[1],
        client_cert=client[0],
        client_key=client[1],
        other_ca_cert=other_ca[0],
        other_client_cert=other_client[0],
        other_client_key=other_client[1],
    )
