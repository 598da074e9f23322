"""HTTPS for a school that has no PKI: a small private CA and the controller's server certificate.

Agents verify the controller against a CA file (``AgentConfig.ca_file``), so the CA certificate is
what gets deployed to every machine; the controller presents a leaf certificate signed by it. Choices,
and why:

* EC P-256 keys and SHA-256: accepted by every TLS stack a school runs, small and fast.
* The CA has ``pathlen:0``: it can sign servers but never another CA, so a stolen key cannot mint
  a hidden intermediate. Optionally it carries name constraints (``permitted``), which makes it safe
  to add to every browser's trust store: it then cannot vouch for any site outside the school's names.
* Leaves live at most 397 days: the limit browsers enforce for public CAs, well inside the 825 days
  Apple enforces for every CA, and short enough that renewal stays a routine the school remembers.
* Private keys are written 0600 from the moment the file exists (never chmod-after-write), atomically,
  so a crash cannot leave half a key; an existing CA is never overwritten by accident, because agents
  already trust it.

Only files and the ``cryptography`` package; the CLI (``caretaker tls``) is a thin wrapper.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LEAF_MAX_DAYS = 397
CA_DEFAULT_DAYS = 3650
# Clocks on school PCs drift; a certificate valid from "now" would be refused by a machine a few
# minutes behind.
BACKDATE = timedelta(minutes=5)

CA_CERT_NAME, CA_KEY_NAME = "ca.crt", "ca.key"
SERVER_CERT_NAME, SERVER_KEY_NAME = "server.crt", "server.key"

_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
Hostname = x509.DNSName | x509.IPAddress


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with ``mode`` set at creation, so no other reader ever sees a wider mode."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)  # the umask may have narrowed a public file's mode
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    _write(path, pem, 0o600)


def _write_cert(path: Path, certificate: x509.Certificate) -> None:
    _write(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def _san(hostname: str) -> Hostname:
    """An IP address becomes an IP SAN (clients match IPs only against those), anything else a DNS name."""
    text = hostname.strip()
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        ascii_name = text.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"{hostname!r} is not a valid host name") from None
    labels = ascii_name.split(".")
    if labels[0] == "*" and len(labels) > 2:
        labels = labels[1:]  # a wildcard is allowed as the whole leftmost label only
    if not labels or not all(_DNS_LABEL.fullmatch(label) for label in labels) or len(ascii_name) > 253:
        raise ValueError(f"{hostname!r} is not a valid host name")
    return x509.DNSName(ascii_name)


def _name_constraints(permitted: Sequence[str]) -> x509.NameConstraints:
    """DNS suffixes and IP networks the CA may vouch for. Without a network, IPs are excluded entirely:
    RFC 5280 constraints only bind the name types they mention, so silence would permit every IP."""
    dns: list[x509.GeneralName] = []
    networks: list[x509.GeneralName] = []
    for entry in permitted:
        try:
            networks.append(x509.IPAddress(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            dns.append(_san(entry))
    excluded: list[x509.GeneralName] = []
    if not networks:
        excluded = [x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")), x509.IPAddress(ipaddress.ip_network("::/0"))]
    return x509.NameConstraints(permitted_subtrees=dns + networks or None, excluded_subtrees=excluded or None)


def create_ca(directory: Path | str, common_name: str, days: int = CA_DEFAULT_DAYS, *,
              permitted: Sequence[str] = (), overwrite: bool = False) -> tuple[Path, Path]:
    """Create ``ca.crt`` and ``ca.key`` in ``directory``; returns (cert_path, key_path).

    ``permitted`` (e.g. ``["school.internal", "10.0.0.0/8"]``) restricts the CA to those DNS suffixes
    and networks. Refuses to replace an existing CA unless ``overwrite``: every agent would stop
    trusting the controller.
    """
    if days < 1:
        raise ValueError("a CA must be valid for at least one day")
    folder = Path(directory)
    cert_path, key_path = folder / CA_CERT_NAME, folder / CA_KEY_NAME
    if not overwrite and (cert_path.exists() or key_path.exists()):
        raise FileExistsError(f"a CA already exists in {folder}; agents trust it, so it is not replaced")
    folder.mkdir(parents=True, exist_ok=True)

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.now(UTC) - BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if permitted:
        builder = builder.add_extension(_name_constraints(permitted), critical=True)
    certificate = builder.sign(key, hashes.SHA256())
    _write_key(key_path, key)
    _write_cert(cert_path, certificate)
    return cert_path, key_path


def _load_ca(ca_cert: Path | str, ca_key: Path | str,
             password: bytes | None) -> tuple[x509.Certificate, SigningKey]:
    certificate = x509.load_pem_x509_certificate(Path(ca_cert).read_bytes())
    key = serialization.load_pem_private_key(Path(ca_key).read_bytes(), password=password)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{ca_key}: only EC and RSA CA keys are supported")
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():
        raise ValueError(f"{ca_key} is not the key of {ca_cert}")
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ValueError(f"{ca_cert} is not a CA certificate (basicConstraints CA:TRUE is missing)")
    return certificate, key


def _authority_key_identifier(ca: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def issue_server_certificate(ca_cert: Path | str, ca_key: Path | str, hostnames: Sequence[str],
                             directory: Path | str, days: int = LEAF_MAX_DAYS, *,
                             ca_key_password: bytes | None = None) -> tuple[Path, Path]:
    """Write ``server.crt`` and ``server.key`` for every name agents and browsers will use to reach the
    controller (DNS names and IP addresses); returns (cert_path, key_path). Replaces an existing pair:
    renewing is routine, and the CA, not the leaf, is what clients trust.
    """
    if not hostnames:
        raise ValueError("give at least one host name or IP address the controller is reached by")
    if not 1 <= days <= LEAF_MAX_DAYS:
        raise ValueError(f"a server certificate may be valid for 1 to {LEAF_MAX_DAYS} days")
    names = list(dict.fromkeys(_san(h) for h in hostnames))
    authority, signing_key = _load_ca(ca_cert, ca_key, ca_key_password)

    start = datetime.now(UTC) - BACKDATE
    end = start + timedelta(days=days)
    if end > authority.not_valid_after_utc:
        raise ValueError(f"the CA expires on {authority.not_valid_after_utc:%Y-%m-%d}, before this certificate "
                         "would; issue it for fewer days or create a new CA")
    # The CN is legacy, but OpenSSL still checks a host-like CN against DNS name constraints, so only
    # a DNS name goes there; with none that fits, the subject stays empty and the SANs carry identity.
    common = next((n.value for n in names if isinstance(n, x509.DNSName) and len(n.value) <= 64), None)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)] if common else [])
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # RFC 5280: with an empty subject the SANs are the only identity and must be critical.
        .add_extension(x509.SubjectAlternativeName(names), critical=not subject)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_identifier(authority), critical=False)
        .sign(signing_key, hashes.SHA256())
    )
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / SERVER_CERT_NAME, folder / SERVER_KEY_NAME
    _write_key(key_path, key)
    _write_cert(cert_path, certificate)
    return cert_path, key_path


def _general_name(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    return str(name.value)


def describe(cert_path: Path | str, now: datetime | None = None) -> str:
    """What an administrator checks before deploying a certificate: who it names, until when, and its
    fingerprint (to compare with what a client reports)."""
    certificate = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    now = now or datetime.now(UTC)
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now < start:
        status = f"not valid until {start:%Y-%m-%d %H:%M} UTC"
    elif now >= end:
        status = f"EXPIRED {(now - end).days} days ago"
    else:
        status = f"expires in {(end - now).days} days"
    extensions = certificate.extensions
    try:
        constraints: x509.BasicConstraints | None = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    is_ca = constraints is not None and constraints.ca
    lines = [
        f"subject:  {certificate.subject.rfc4514_string() or '(empty)'}",
        f"issuer:   {certificate.issuer.rfc4514_string() or '(empty)'}",
    ]
    try:
        sans = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        lines.append(f"SANs:     {', '.join(_general_name(n) for n in sans)}")
    except x509.ExtensionNotFound:
        if not is_ca:
            lines.append("SANs:     (none: clients will refuse it for HTTPS)")
    lines.append(f"valid:    {start:%Y-%m-%d %H:%M} UTC to {end:%Y-%m-%d %H:%M} UTC ({status})")
    if constraints is not None and constraints.ca:
        depth = "any depth" if constraints.path_length is None else f"path length {constraints.path_length}"
        lines.append(f"CA:       yes ({depth})")
        try:
            limits = extensions.get_extension_for_class(x509.NameConstraints).value
            permitted = ", ".join(_general_name(n) for n in limits.permitted_subtrees or ()) or "(any)"
            excluded = ", ".join(_general_name(n) for n in limits.excluded_subtrees or ())
            lines.append(f"limited:  to {permitted}" + (f"; never {excluded}" if excluded else ""))
        except x509.ExtensionNotFound:
            lines.append("limited:  no (it can vouch for any name: keep its key safe)")
    lines.append(f"SHA-256:  {certificate.fingerprint(hashes.SHA256()).hex(':').upper()}")
    return "\n".join(lines)
