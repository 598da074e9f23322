"""HTTPS without a PKI: real handshakes against certificates the controller issues for itself."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from controller.tls import LEAF_MAX_DAYS, create_ca, describe, issue_server_certificate


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"caretaker"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def https_server(cert: Path, key: Path) -> Iterator[int]:
    """A real TLS server on loopback presenting ``cert``; yields its port."""
    server = HTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def fetch(url: str, cafile: Path) -> bytes:
    with urllib.request.urlopen(url, context=ssl.create_default_context(cafile=cafile), timeout=5) as response:
        return response.read()


def verify_error(url: str, cafile: Path) -> ssl.SSLCertVerificationError:
    with pytest.raises(urllib.error.URLError) as caught:
        fetch(url, cafile)
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError), caught.value
    return caught.value.reason


def handshake(port: int, cafile: Path, server_hostname: str) -> None:
    """Connect to loopback while asking for ``server_hostname``, as a client that resolved it would."""
    context = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=server_hostname):
        pass


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Path, Path]:
    return create_ca(tmp_path / "ca", "Example Academy Caretaker CA", days=3650)


def test_an_agent_trusting_the_school_ca_reaches_the_controller_by_name_and_by_ip(
        ca: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = issue_server_certificate(*ca, ["localhost", "127.0.0.1"], tmp_path / "server")
    with https_server(cert, key) as port:
        assert fetch(f"https://localhost:{port}/", ca[0]) == b"caretaker"
        assert fetch(f"https://127.0.0.1:{port}/", ca[0]) == b"caretaker"


def test_a_client_trusting_a_different_ca_refuses_the_controller(ca: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = issue_server_certificate(*ca, ["localhost"], tmp_path / "server")
    other_ca, _ = create_ca(tmp_path / "other", "Somebody Else's CA")
    with https_server(cert, key) as port:
        error = verify_error(f"https://localhost:{port}/", other_ca)
    assert "unable to get local issuer certificate" in error.verify_message


@pytest.mark.parametrize(("issued_for", "url_host", "complaint"), [
    (["caretaker.school.internal"], "localhost", "Hostname mismatch"),
    (["caretaker.school.internal"], "127.0.0.1", "IP address mismatch"),
    (["localhost"], "127.0.0.1", "IP address mismatch"),  # a name does not cover its address
])
def test_a_name_the_certificate_does_not_list_is_refused(
        ca: tuple[Path, Path], tmp_path: Path, issued_for: list[str], url_host: str, complaint: str) -> None:
    cert, key = issue_server_certificate(*ca, issued_for, tmp_path / "server")
    with https_server(cert, key) as port:
        error = verify_error(f"https://{url_host}:{port}/", ca[0])
    assert complaint in error.verify_message


@pytest.mark.parametrize(("permitted", "issued_for", "asked_for", "trusted"), [
    (["school.internal"], "caretaker.school.internal", "caretaker.school.internal", True),
    (["school.internal"], "school.internal", "school.internal", True),
    (["school.internal"], "login.microsoftonline.com", "login.microsoftonline.com", False),
    (["school.internal"], "127.0.0.1", "127.0.0.1", False),  # naming no network forbids every IP
    (["school.internal", "127.0.0.0/8"], "127.0.0.1", "127.0.0.1", True),
    (["school.internal", "10.0.0.0/8"], "127.0.0.1", "127.0.0.1", False),
])
def test_a_name_constrained_ca_cannot_vouch_for_sites_outside_the_school(
        tmp_path: Path, permitted: list[str], issued_for: str, asked_for: str, trusted: bool) -> None:
    ca_cert, ca_key = create_ca(tmp_path / "ca", "Example Academy CA", permitted=permitted)
    cert, key = issue_server_certificate(ca_cert, ca_key, [issued_for], tmp_path / "server")
    with https_server(cert, key) as port:
        if trusted:
            handshake(port, ca_cert, asked_for)
        else:
            with pytest.raises(ssl.SSLCertVerificationError, match="subtree violation"):
                handshake(port, ca_cert, asked_for)


def test_private_keys_are_readable_by_their_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        ca_cert, ca_key = create_ca(tmp_path / "ca", "Example Academy CA")
        cert, key = issue_server_certificate(ca_cert, ca_key, ["caretaker"], tmp_path / "server")
    finally:
        os.umask(previous)
    assert {p.name: p.stat().st_mode & 0o777 for p in (ca_key, key, ca_cert, cert)} == {
        "ca.key": 0o600, "server.key": 0o600, "ca.crt": 0o644, "server.crt": 0o644}
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "ca.crt", "ca.key", "server.crt", "server.key"], "no temporary files are left behind"


def test_an_existing_ca_is_not_replaced_unless_asked(ca: tuple[Path, Path]) -> None:
    ca_cert, ca_key = ca
    original = ca_key.read_bytes()
    with pytest.raises(FileExistsError):
        create_ca(ca_cert.parent, "A second CA")
    assert ca_key.read_bytes() == original

    create_ca(ca_cert.parent, "A second CA", overwrite=True)
    assert ca_key.read_bytes() != original
    assert "CN=A second CA" in describe(ca_cert)


def test_the_ca_signs_servers_only(ca: tuple[Path, Path]) -> None:
    """What a client checks when it walks the chain: a CA, which may not create other CAs."""
    certificate = x509.load_pem_x509_certificate(ca[0].read_bytes())
    basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    assert usage.critical and usage.value.key_cert_sign


def test_the_server_certificate_is_for_serving_https_within_browser_limits(
        ca: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _ = issue_server_certificate(*ca, ["caretaker.school.internal", "10.0.12.5"], tmp_path / "server",
                                       days=LEAF_MAX_DAYS)
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    extensions = certificate.extensions
    sans = extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc <= timedelta(days=397)
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert sans.get_values_for_type(x509.DNSName) == ["caretaker.school.internal"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.12.5"]


@pytest.mark.parametrize("days", [0, LEAF_MAX_DAYS + 1, 825])
def test_server_certificates_browsers_would_refuse_are_not_issued(
        ca: tuple[Path, Path], tmp_path: Path, days: int) -> None:
    with pytest.raises(ValueError, match="397"):
        issue_server_certificate(*ca, ["caretaker"], tmp_path / "server", days=days)
    assert not (tmp_path / "server").exists()


def test_a_server_certificate_may_not_outlive_its_ca(tmp_path: Path) -> None:
    ca_cert, ca_key = create_ca(tmp_path / "ca", "Short-lived CA", days=30)
    with pytest.raises(ValueError, match="CA expires"):
        issue_server_certificate(ca_cert, ca_key, ["caretaker"], tmp_path / "server", days=90)


@pytest.mark.parametrize("bad", ["", "bad host", "-leading.example", "a..b", "*.com", "x" * 64 + ".example"])
def test_names_that_are_not_host_names_are_refused(ca: tuple[Path, Path], tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid host name"):
        issue_server_certificate(*ca, [bad], tmp_path / "server")


def test_a_key_that_does_not_belong_to_the_ca_is_refused(ca: tuple[Path, Path], tmp_path: Path) -> None:
    _, other_key = create_ca(tmp_path / "other", "Somebody Else's CA")
    with pytest.raises(ValueError, match="is not the key of"):
        issue_server_certificate(ca[0], other_key, ["caretaker"], tmp_path / "server")


def test_describe_says_what_an_administrator_checks(ca: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _ = issue_server_certificate(*ca, ["caretaker.school.internal", "10.0.12.5"], tmp_path / "server",
                                       days=90)
    issued = x509.load_pem_x509_certificate(cert.read_bytes())
    start = issued.not_valid_before_utc

    text = describe(cert, now=start + timedelta(days=30))
    assert "subject:  CN=caretaker.school.internal" in text
    assert "issuer:   CN=Example Academy Caretaker CA" in text
    assert "SANs:     DNS:caretaker.school.internal, IP:10.0.12.5" in text
    assert "(expires in 60 days)" in text
    assert issued.fingerprint(hashes.SHA256()).hex(":").upper() in text
    assert "EXPIRED 10 days ago" in describe(cert, now=start + timedelta(days=100))
    assert "CA:       yes (path length 0)" in describe(ca[0], now=datetime.now(UTC))


def test_a_school_rsa_ca_without_key_identifiers_can_sign_the_controller(tmp_path: Path) -> None:
    """Older school CAs: RSA, and no subjectKeyIdentifier for the leaf's authorityKeyIdentifier to copy."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Example Trust Root CA")])
    now = datetime.now(UTC)
    root = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "root.crt").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "root.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse")))

    cert, server_key = issue_server_certificate(tmp_path / "root.crt", tmp_path / "root.key", ["localhost"],
                                                tmp_path / "server", ca_key_password=b"correct horse")
    with https_server(cert, server_key) as port:
        assert fetch(f"https://localhost:{port}/", tmp_path / "root.crt") == b"caretaker"


def test_describe_shows_how_far_a_ca_can_vouch(tmp_path: Path) -> None:
    ca_cert, _ = create_ca(tmp_path / "ca", "Example Academy CA", permitted=["school.internal"])
    text = describe(ca_cert)
    assert "limited:  to DNS:school.internal; never IP:0.0.0.0/0, IP:::/0" in text
    assert "SANs" not in text
