"""SNMP credentials, kept apart from device profiles, and which of them may be tried where.

A credentials file names v2c communities and v3 authPriv users and says, per subnet or per device,
which names to try there. Secrets never sit in the file: each is a reference (``env:NAME``,
``file:/path``) or a Fernet token (``fernet:…``) decrypted with a key that is itself a reference.
A secret's repr is its reference, so a credential can be logged or printed without leaking it.

Spraying every credential at every address locks accounts and trips alarms (DOMAIN.md), so an
address gets only the credentials of its own rule: an exact ``address`` entry if there is one, else
the most specific ``subnet`` that contains it, else none at all.

```yaml
key: file:/etc/caretaker/snmp.key        # only needed for fernet: secrets
credentials:
  school-ro: {version: 2c, community: env:SNMP_COMMUNITY}
  pdu-v3:
    version: 3
    user: caretaker
    auth_protocol: SHA256                 # MD5 SHA SHA224 SHA256 SHA384 SHA512
    auth_key: file:secrets/pdu-auth       # relative to this file
    priv_protocol: AES                    # DES AES AES192 AES256
    priv_key: fernet:gAAAAAB…
    context: ""                           # SNMPv3 context name, rarely needed
targets:
  - {subnet: 10.20.0.0/16, use: [school-ro]}
  - {address: 10.20.5.9, use: [pdu-v3, school-ro]}
```
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml
from cryptography.fernet import Fernet, InvalidToken

from controller.errors import DomainError


class CredentialError(ValueError, DomainError):
    """A credentials file that cannot be used; the message names the place, never a secret."""


class Secret:
    """A secret value that shows only where it came from."""

    __slots__ = ("_value", "reference")

    def __init__(self, value: str, reference: str) -> None:
        self._value = value
        self.reference = reference if not reference.startswith("fernet:") else "fernet:…"

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Secret) and self.reference == other.reference
                and hmac.compare_digest(self._value.encode(), other._value.encode()))

    def __hash__(self) -> int:
        return hash(self.reference)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict) -> Secret:
        return self

    def __reduce__(self) -> tuple:
        raise TypeError("a Secret is not serialised; store its reference instead")


class AuthProtocol(enum.StrEnum):
    MD5 = "MD5"
    SHA = "SHA"
    SHA224 = "SHA224"
    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"


class PrivProtocol(enum.StrEnum):
    DES = "DES"
    AES = "AES"
    AES192 = "AES192"
    AES256 = "AES256"


@dataclass(frozen=True)
class CommunityCredential:
    """SNMPv2c: the community string is the whole secret."""

    name: str
    community: Secret


@dataclass(frozen=True)
class UsmCredential:
    """SNMPv3 with authentication and privacy (authPriv); weaker levels are not accepted."""

    name: str
    user: str
    auth_protocol: AuthProtocol
    auth_key: Secret
    priv_protocol: PrivProtocol
    priv_key: Secret
    context: str = ""


Credential = CommunityCredential | UsmCredential


@dataclass(frozen=True)
class Rule:
    """Which credential names to try, in order, for one address or one subnet."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    address: str | None
    use: tuple[str, ...]


@dataclass(frozen=True)
class CredentialStore:
    credentials: Mapping[str, Credential]
    rules: tuple[Rule, ...]

    def candidates(self, address: str) -> tuple[Credential, ...]:
        """The credentials configured for ``address``, most specific rule only, in configured order."""
        rule = self.rule_for(address)
        return tuple(self.credentials[name] for name in rule.use) if rule else ()

    def rule_for(self, address: str) -> Rule | None:
        exact = [r for r in self.rules if r.address is not None and r.address == address]
        if exact:
            return exact[0]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        containing = [r for r in self.rules if r.network is not None and ip in r.network]
        if not containing:
            return None
        return max(containing, key=lambda r: r.network.prefixlen if r.network else -1)


class CredentialMemory(Protocol):
    """Where the credential that last worked for an address is kept (in memory here; the register later)."""

    def recall(self, address: str) -> str | None: ...

    def remember(self, address: str, credential: str) -> None: ...


class RememberedCredentials:
    """The in-process CredentialMemory."""

    def __init__(self, known: Mapping[str, str] | None = None) -> None:
        self._known = dict(known or {})

    def recall(self, address: str) -> str | None:
        return self._known.get(address)

    def remember(self, address: str, credential: str) -> None:
        self._known[address] = credential


def in_trial_order(candidates: tuple[Credential, ...], remembered: str | None) -> tuple[Credential, ...]:
    """The remembered credential first, if it is still configured for the address; then the rest."""
    first = [c for c in candidates if c.name == remembered]
    return tuple(first + [c for c in candidates if c.name != remembered])


# --- loading --------------------------------------------------------------------------------------

def ensure_key(path: Path) -> tuple[bytes, bool]:
    """The Fernet key in ``path``, created (owner-only) if there is none; and whether it was created."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip(), False
    key = Fernet.generate_key()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key + b"\n")
    return key, True


def encrypt_secret(key: bytes, secret: str) -> str:
    """The ``fernet:`` form of a secret, for pasting into a credentials file."""
    return "fernet:" + Fernet(key).encrypt(secret.encode()).decode()


def load_credentials(path: Path, environ: Mapping[str, str]) -> CredentialStore:
    """Read and check a credentials file; ``environ`` resolves ``env:`` references (pass os.environ)."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CredentialError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CredentialError(f"{path} is not valid YAML: {exc}") from None
    return parse_credentials(data, environ, path.parent)


def parse_credentials(data: object, environ: Mapping[str, str], base_dir: Path) -> CredentialStore:
    doc = _mapping(data, "the credentials file")
    _only(doc, {"key", "credentials", "targets"}, "the credentials file")
    resolver = _Resolver(environ, base_dir)
    if "key" in doc:
        key_text = resolver.resolve(_text(doc["key"], "key"), "key", allow_fernet=False).reveal()
        try:
            resolver.fernet = Fernet(key_text.encode())
        except ValueError:
            raise CredentialError("key: is not a Fernet key (32 url-safe base64-encoded bytes)") from None
    credentials = {
        _text(name, "credentials"): _credential(str(name), _mapping(spec, f"credentials.{name}"), resolver)
        for name, spec in _mapping(doc.get("credentials", {}), "credentials").items()
    }
    targets = doc.get("targets", [])
    if not isinstance(targets, list):
        raise CredentialError("targets: expected a list of {subnet|address, use}")
    rules = tuple(_rule(_mapping(t, f"targets[{i}]"), i, credentials) for i, t in enumerate(targets))
    return CredentialStore(credentials, rules)


class _Resolver:
    def __init__(self, environ: Mapping[str, str], base_dir: Path) -> None:
        self.environ = environ
        self.base_dir = base_dir
        self.fernet: Fernet | None = None

    def resolve(self, reference: str, where: str, allow_fernet: bool = True) -> Secret:
        scheme, _, rest = reference.partition(":")
        if scheme == "env" and rest:
            if rest not in self.environ:
                raise CredentialError(f"{where}: environment variable {rest} is not set")
            return Secret(self.environ[rest], reference)
        if scheme == "file" and rest:
            path = Path(rest) if Path(rest).is_absolute() else self.base_dir / rest
            try:
                return Secret(path.read_text().rstrip("\r\n"), reference)
            except OSError as exc:
                raise CredentialError(f"{where}: cannot read {path}: {exc.strerror}") from None
        if scheme == "fernet" and rest and allow_fernet:
            if self.fernet is None:
                raise CredentialError(f"{where}: a fernet: secret needs a key: at the top of the file")
            try:
                return Secret(self.fernet.decrypt(rest.encode()).decode(), reference)
            except InvalidToken:
                raise CredentialError(f"{where}: cannot be decrypted with the configured key") from None
        forms = "env:NAME, file:/path or fernet:TOKEN" if allow_fernet else "env:NAME or file:/path"
        raise CredentialError(f"{where}: write secrets as {forms}, never in the file itself")


def _credential(name: str, spec: dict, resolver: _Resolver) -> Credential:
    where = f"credentials.{name}"
    version = str(spec.get("version", ""))
    if version == "2c":
        _only(spec, {"version", "community"}, where)
        return CommunityCredential(name, resolver.resolve(_text(spec.get("community"), f"{where}.community"),
                                                          f"{where}.community"))
    if version == "3":
        _only(spec, {"version", "user", "auth_protocol", "auth_key", "priv_protocol", "priv_key", "context"}, where)
        missing = [f for f in ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key") if f not in spec]
        if missing:
            raise CredentialError(f"{where}: SNMPv3 needs authPriv; missing {', '.join(missing)}")
        keys = {}
        for field in ("auth_key", "priv_key"):
            keys[field] = resolver.resolve(_text(spec[field], f"{where}.{field}"), f"{where}.{field}")
            if len(keys[field].reveal()) < 8:
                raise CredentialError(f"{where}.{field}: SNMPv3 keys are at least 8 characters")
        return UsmCredential(name, _text(spec["user"], f"{where}.user"),
                             _choice(AuthProtocol, spec["auth_protocol"], f"{where}.auth_protocol"), keys["auth_key"],
                             _choice(PrivProtocol, spec["priv_protocol"], f"{where}.priv_protocol"), keys["priv_key"],
                             str(spec.get("context", "")))
    raise CredentialError(f"{where}.version: expected 2c or 3 (SNMPv1 is not supported)")


def _rule(spec: dict, i: int, credentials: Mapping[str, Credential]) -> Rule:
    where = f"targets[{i}]"
    _only(spec, {"subnet", "address", "use"}, where)
    if ("subnet" in spec) == ("address" in spec):
        raise CredentialError(f"{where}: give exactly one of subnet or address")
    use = spec.get("use")
    if isinstance(use, str):
        use = [use]
    if not isinstance(use, list) or not use:
        raise CredentialError(f"{where}.use: expected a list of credential names")
    unknown = [str(u) for u in use if u not in credentials]
    if unknown:
        raise CredentialError(f"{where}.use: no credential named {', '.join(unknown)}")
    if "subnet" in spec:
        try:
            network = ipaddress.ip_network(str(spec["subnet"]), strict=False)
        except ValueError:
            raise CredentialError(f"{where}.subnet: {spec['subnet']!r} is not a subnet like 10.1.0.0/16") from None
        return Rule(network, None, tuple(use))
    return Rule(None, _text(spec["address"], f"{where}.address"), tuple(use))


def _mapping(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise CredentialError(f"{where}: expected a mapping")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CredentialError(f"{where}: expected a non-empty string")
    return value.strip()


def _only(spec: dict, allowed: set[str], where: str) -> None:
    extra = sorted(str(k) for k in spec if k not in allowed)
    if extra:
        raise CredentialError(f"{where}: unknown field(s) {', '.join(extra)}")


def _choice(kind: type[enum.StrEnum], value: object, where: str):
    try:
        return kind(str(value).upper())
    except ValueError:
        raise CredentialError(f"{where}: expected one of {', '.join(kind)}") from None
