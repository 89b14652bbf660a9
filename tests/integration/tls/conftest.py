"""Fixtures for the TLS tests: one throwaway PKI per session."""

from __future__ import annotations

import pytest

from tests.integration.tls.tls_certs import TlsFiles, make_tls_files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA, a server certificate for 127.0.0.1, client certificates from it and another CA."""
    return make_tls_files(tmp_path_factory.mktemp("pki"))
