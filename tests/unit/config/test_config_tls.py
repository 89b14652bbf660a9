"""TLS settings: where MLLP sources, the HTTP API and FHIR destinations name
their certificate, key and CA files, how relative paths resolve, and the
line every problem is reported on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config import TlsConfig, dump_config, lint_file, load_config, parse_config
from tests.integration.tls.tls_certs import TlsFiles, make_tls_files


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def certs(tmp_path: Path, pki: TlsFiles) -> Path:
    """The config directory ``tmp_path`` with the PKI copied into ``certs/``."""
    target = tmp_path / "certs"
    target.mkdir()
    for path in (pki.ca_cert, pki.server_cert, pki.server_key, pki.client_key):
        shutil.copy(path, target / path.name)
    return target


def lint(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "wardstream.yaml"
    path.write_text(text, encoding="utf-8")
    return [str(issue).replace(f"{tmp_path}/", "") for issue in lint_file(path)]


def test_tls_is_off_unless_configured() -> None:
    config = parse_config("")
    assert config.http.tls is None
    assert config.channels[0].source.tls is None


def test_relative_files_resolve_against_the_config_file(tmp_path: Path, certs: Path) -> None:
    text = """\
http:
  tls: {cert_file: certs/server.pem, key_file: certs/server.key}
channels:
  - name: adt
    source:
      type: mllp
      tls:
        cert_file: certs/server.pem
        key_file: certs/server.key
        ca_file: certs/ca.pem
        require_client_cert: true
destinations:
  - {name: hapi, type: fhir, base_url: 'https://fhir.example/r4', ca_file: certs/ca.pem}
"""
    path = tmp_path / "wardstream.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path, environ={})

    tls = config.channels[0].source.tls
    assert tls == TlsConfig(
        cert_file=certs / "server.pem",
        key_file=certs / "server.key",
        ca_file=certs / "ca.pem",
        require_client_cert=True,
    )
    assert config.http.tls is not None
    assert (config.http.tls.cert_file, config.http.tls.ca_file) == (certs / "server.pem", None)
    assert config.http.tls.require_client_cert is False
    assert config.destinations[0].ca_file == certs / "ca.pem"
    # The dump names absolute files, so it loads the same from anywhere.
    assert parse_config(dump_config(config)) == config


def test_without_a_file_relative_paths_mean_the_working_directory(
    tmp_path: Path, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse_config("http: {tls: {cert_file: certs/server.pem, key_file: certs/server.key}}")
    assert config.http.tls is not None
    assert config.http.tls.cert_file == Path("certs/server.pem")


def test_missing_files_are_reported_on_their_line(tmp_path: Path, certs: Path) -> None:
    text = """\
http:
  tls:
    cert_file: certs/server.pem
    key_file: certs/nope.key
channels:
  - name: adt
    source:
      type: mllp
      tls: {cert_file: certs, key_file: certs/server.key, ca_file: /no/such/ca.pem}
destinations:
  - name: hapi
    type: fhir
    base_url: https://fhir.example/r4
    ca_file: ca.pem
"""
    assert lint(tmp_path, text) == [
        "wardstream.yaml:4:15: http.tls.key_file: certs/nope.key does not exist",
        "wardstream.yaml:9:24: channels[0].source.tls.cert_file: certs is not a file",
        "wardstream.yaml:9:68: channels[0].source.tls.ca_file: /no/such/ca.pem does not exist",
        "wardstream.yaml:14:14: destinations[0].ca_file: ca.pem does not exist",
    ]


def test_client_certificates_need_a_ca(tmp_path: Path, certs: Path) -> None:
    text = """\
channels:
  - name: adt
    source:
      type: mllp
      tls:
        cert_file: certs/server.pem
        key_file: certs/server.key
        require_client_cert: true
"""
    assert lint(tmp_path, text) == [
        "wardstream.yaml:8:30: channels[0].source.tls.require_client_cert:"
        " needs ca_file to verify client certificates"
    ]


def test_unusable_files_are_reported_at_the_certificate(tmp_path: Path, certs: Path) -> None:
    text = """\
http:
  tls: {cert_file: certs/server.pem, key_file: certs/client.key}
channels:
  - name: adt
    source:
      type: mllp
      tls: {cert_file: certs/server.key, key_file: certs/server.key}
  - name: lab
    source:
      type: mllp
      port: 2576
      tls: {cert_file: certs/server.pem, key_file: certs/server.key, ca_file: certs/server.key}
"""
    assert lint(tmp_path, text) == [
        "wardstream.yaml:2:20: http.tls.cert_file:"
        " cannot load certificate and key: KEY_VALUES_MISMATCH",
        "wardstream.yaml:7:24: channels[0].source.tls.cert_file:"
        " cannot load certificate and key: not PEM data of the expected kind",
        "wardstream.yaml:12:24: channels[1].source.tls.cert_file:"
        " cannot load CA certificates: NO_CERTIFICATE_OR_CRL_FOUND",
    ]


def test_unknown_tls_settings_are_refused(tmp_path: Path, certs: Path) -> None:
    text = "http:\n  tls: {cert_file: certs/server.pem, key_file: certs/server.key, verify: no}\n"
    assert lint(tmp_path, text) == [
        "wardstream.yaml:2:66: http.tls.verify: unknown setting 'verify'"
    ]
