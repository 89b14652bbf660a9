"""engine.tls: the contexts the engine's listeners and clients use."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from engine.tls import (
    MINIMUM_VERSION,
    TlsSetupError,
    client_context,
    server_context,
    server_context_for,
)
from tests.integration.tls.tls_certs import TlsFiles, make_tls_files


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


def test_server_context_is_tls12_or_later_and_asks_for_no_client_certificate(
    pki: TlsFiles,
) -> None:
    context = server_context(pki.server_cert, pki.server_key)
    assert context.minimum_version == MINIMUM_VERSION == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(
    ("required", "mode"), [(False, ssl.CERT_OPTIONAL), (True, ssl.CERT_REQUIRED)]
)
def test_a_ca_file_turns_on_client_certificate_checks(
    pki: TlsFiles, required: bool, mode: ssl.VerifyMode
) -> None:
    context = server_context(
        pki.server_cert, pki.server_key, ca_file=pki.ca_cert, require_client_cert=required
    )
    assert context.verify_mode == mode
    # Only the configured CA: never the system store.
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "Wardstream test ca"),),)
    ]


def test_requiring_client_certificates_needs_a_ca(pki: TlsFiles) -> None:
    with pytest.raises(TlsSetupError, match="needs a ca_file"):
        server_context(pki.server_cert, pki.server_key, require_client_cert=True)


def test_client_context_verifies_the_server_against_the_ca(pki: TlsFiles) -> None:
    context = client_context(
        ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key
    )
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert len(context.get_ca_certs()) == 1


def test_client_key_without_certificate_is_refused(pki: TlsFiles) -> None:
    with pytest.raises(TlsSetupError, match="key_file given without cert_file"):
        client_context(key_file=pki.client_key)


def test_an_encrypted_key_is_refused_without_a_prompt(pki: TlsFiles, tmp_path: Path) -> None:
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(pki.server_key), "-aes256", "-passout", "pass:secret",
         "-out", str(encrypted)],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    with pytest.raises(TlsSetupError, match="encrypted"):
        server_context(pki.server_cert, encrypted)


def test_a_mismatched_key_is_refused(pki: TlsFiles) -> None:
    with pytest.raises(TlsSetupError, match="KEY_VALUES_MISMATCH"):
        server_context(pki.server_cert, pki.client_key)


def test_no_tls_setting_means_plain_tcp() -> None:
    assert server_context_for(None) is None
