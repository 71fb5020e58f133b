"""The development CA in its own directory: roles, service material, revocation."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from renkei.errors import InvalidArgumentError, NotFoundError, NotInitializedError
from renkei.pki.ca import DevelopmentCA


def test_opening_a_missing_ca_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(NotInitializedError, match="renkei pki init"):
        DevelopmentCA(tmp_path / "pki")
    assert not (tmp_path / "pki").exists()


@pytest.mark.parametrize("role", ["agency", "bogus"])
def test_agency_certificates_need_an_id_and_roles_are_closed(tmp_path: Path, role: str) -> None:
    ca = DevelopmentCA.init(tmp_path / "pki")
    with pytest.raises(InvalidArgumentError):
        ca.issue_client_certificate(role, "x")
    assert (tmp_path / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "pki").stat().st_mode & 0o777 == 0o700


def test_a_service_gets_only_its_own_material(tmp_path: Path) -> None:
    ca = DevelopmentCA.init(tmp_path / "pki")
    tls = ca.issue_service("jlis", tmp_path / "jlis", client_role="jlis")
    assert sorted(p.name for p in tls.folder.iterdir()) == ["ca.pem", "client.key", "client.pem", "server.key",
                                                           "server.pem"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in tls.folder.iterdir())
    assert ca.ca_key_path.read_bytes() not in b"".join(p.read_bytes() for p in tls.folder.iterdir())
    server = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    client = x509.load_pem_x509_certificate(tls.client_cert.read_bytes())
    uris = client.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)
    assert uris == ["urn:renkei:role:jlis"]


def test_reissue_and_revoke_go_into_the_crl(tmp_path: Path) -> None:
    ca = DevelopmentCA.init(tmp_path / "pki")
    first = ca.issue_agency_certificate(7, "府中市長")
    second = ca.issue_agency_certificate(7, "府中市長")
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(first.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(second.serial) is None
    assert crl.is_signature_valid(x509.load_pem_x509_certificate(ca.ca_cert_path.read_bytes()).public_key())  # type: ignore[arg-type]
    ca.revoke("agency-7")
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(second.serial) is not None
    with pytest.raises(NotFoundError):
        ca.revoke("agency-7")
