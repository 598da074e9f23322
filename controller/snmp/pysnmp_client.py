"""The SnmpClient protocol over pysnmp 7's asyncio API (``pysnmp.hlapi.v3arch.asyncio``).

One SnmpEngine per credential: pysnmp keeps users and communities in the engine's local
configuration, keyed by user name, so two devices whose v3 users share a name but not a key would
overwrite each other in a shared engine. Engines cost about 80 ms to build, so they are kept for
the client's lifetime; use the client as an async context manager so their sockets are closed.
Walks use GETBULK. Responses skip MIB lookups: the profiles speak numeric OIDs.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Sequence
from types import TracebackType

from pyasn1.error import PyAsn1Error
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB256_AES,
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905

from controller.snmp import oids
from controller.snmp.client import Kind, SnmpAuthError, SnmpError, SnmpTimeout, Target, Value
from controller.snmp.credentials import AuthProtocol, CommunityCredential, Credential, PrivProtocol

_AUTH = {AuthProtocol.MD5: USM_AUTH_HMAC96_MD5, AuthProtocol.SHA: USM_AUTH_HMAC96_SHA,
         AuthProtocol.SHA224: USM_AUTH_HMAC128_SHA224, AuthProtocol.SHA256: USM_AUTH_HMAC192_SHA256,
         AuthProtocol.SHA384: USM_AUTH_HMAC256_SHA384, AuthProtocol.SHA512: USM_AUTH_HMAC384_SHA512}
_PRIV = {PrivProtocol.DES: USM_PRIV_CBC56_DES, PrivProtocol.AES: USM_PRIV_CFB128_AES,
         PrivProtocol.AES192: USM_PRIV_CFB192_AES, PrivProtocol.AES256: USM_PRIV_CFB256_AES}
_REFUSED = (errind.UnknownUserName, errind.WrongDigest, errind.DecryptionError, errind.UnknownSecurityName,
            errind.UnsupportedSecurityLevel, errind.UnknownEngineID, errind.AuthenticationFailure)
# By BER tag, not class: decoded values may be the plain pyasn1 classes, and Gauge32/Unsigned32 share a tag.
_KINDS = {rfc1902.Integer32.tagSet: Kind.INTEGER, rfc1902.OctetString.tagSet: Kind.OCTETS,
          rfc1902.ObjectIdentifier.tagSet: Kind.OID, rfc1902.IpAddress.tagSet: Kind.IPADDRESS,
          rfc1902.Counter32.tagSet: Kind.COUNTER32, rfc1902.Gauge32.tagSet: Kind.GAUGE32,
          rfc1902.TimeTicks.tagSet: Kind.TIMETICKS, rfc1902.Opaque.tagSet: Kind.OPAQUE,
          rfc1902.Counter64.tagSet: Kind.COUNTER64}
_ABSENT = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)


class PysnmpClient:
    # Most columns a profile walks hold 0-14 rows (outlets, supplies, phases): 10 per GETBULK answers
    # them in one request without decoding dozens of rows past the column's end (bench/snmp_poll.py:
    # a third less CPU on both sides than 25).
    def __init__(self, max_repetitions: int = 10, oids_per_get: int = 16) -> None:
        self.max_repetitions = max_repetitions
        self.oids_per_get = oids_per_get
        self._engines: dict[str, SnmpEngine] = {}
        # A round asks every device for the same OIDs and each device many times: pysnmp resolves an
        # ObjectType against its MIB view once and a transport's address once, so both are kept.
        self._names: dict[str, ObjectType] = {}
        self._transports: dict[tuple[str, int, float, int], UdpTransportTarget] = {}

    async def __aenter__(self) -> PysnmpClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._engines.clear()

    async def get(self, target: Target, oid_list: Sequence[str]) -> dict[str, Value]:
        found: dict[str, Value] = {}
        for start in range(0, len(oid_list), self.oids_per_get):
            chunk = oid_list[start:start + self.oids_per_get]
            indication, status, index, var_binds = await _guarded(target, get_cmd(
                self._engine(target.credential), _auth(target.credential), await self._transport(target),
                _context(target.credential), *(self._name(o) for o in chunk), lookupMib=False))
            _check(target, indication, status, index, chunk)
            for name, value in var_binds:
                converted = _value(value)
                if converted is not None:
                    found[str(name)] = converted
        return found

    async def walk(self, target: Target, prefix: str, max_rows: int = 5000) -> list[tuple[str, Value]]:
        return (await self.walk_many(target, [prefix], max_rows))[prefix]

    async def walk_many(self, target: Target, prefixes: Sequence[str],
                        max_rows: int = 5000) -> dict[str, list[tuple[str, Value]]]:
        """Several subtrees in lockstep: each GETBULK asks for the next rows of every one still open, so
        a profile's seven short columns cost one request, not seven. Answers come row by row, so the
        n-th variable belongs to the (n mod columns)-th column asked."""
        rows: dict[str, list[tuple[str, Value]]] = {p: [] for p in prefixes}
        last = {p: p for p in rows}
        still_open = list(rows)
        while still_open:
            columns = still_open[:self.oids_per_get]
            # At least two rows each, so a one-row column is seen to end in the same answer.
            repetitions = min(max(2, -(-self.max_repetitions // len(columns))), max_rows)
            indication, status, index, var_binds = await _guarded(target, bulk_cmd(
                self._engine(target.credential), _auth(target.credential), await self._transport(target),
                _context(target.credential), 0, repetitions,
                *(self._name(c) if last[c] == c else ObjectType(ObjectIdentity(last[c])) for c in columns),
                lookupMib=False))
            _check(target, indication, status, index, [last[c] for c in columns])
            ended: set[str] = set()
            moved = False
            for position, (name, value) in enumerate(var_binds):
                column = columns[position % len(columns)]
                oid = str(name)
                if column in ended:
                    continue
                if isinstance(value, rfc1905.EndOfMibView) or not oids.is_under(oid, column):
                    ended.add(column)
                    continue
                if oids.key(oid) <= oids.key(last[column]):
                    raise SnmpError(f"{target.host} walked {column} out of order ({oid} after {last[column]})")
                converted = _value(value)
                if converted is not None:
                    rows[column].append((oid, converted))
                last[column], moved = oid, True
                if len(rows[column]) >= max_rows:
                    ended.add(column)
            if not moved:  # an empty answer, or one with nothing new: the walk is over
                ended.update(columns)
            still_open = [c for c in still_open if c not in ended]
        return rows

    def _name(self, oid: str) -> ObjectType:
        name = self._names.get(oid)
        if name is None:
            name = self._names[oid] = ObjectType(ObjectIdentity(oid))
        return name

    async def _transport(self, target: Target) -> UdpTransportTarget:
        key = (target.host, target.port, target.timeout, target.retries)
        transport = self._transports.get(key)
        if transport is None:
            transport = self._transports[key] = await _transport(target)
        return transport

    def _engine(self, credential: Credential) -> SnmpEngine:
        engine = self._engines.get(credential.name)
        if engine is None:
            engine = self._engines[credential.name] = SnmpEngine()
        return engine


async def _guarded(target: Target, request: Awaitable[tuple]) -> tuple:
    """pysnmp's own failures (a malformed answer, an unusable key) as SnmpError, so one odd device
    cannot end a poll of many."""
    try:
        return await request
    except (PySnmpError, PyAsn1Error) as exc:
        raise SnmpError(f"{target.host}:{target.port}: {exc}") from None


def _auth(credential: Credential) -> CommunityData | UsmUserData:
    if isinstance(credential, CommunityCredential):
        # One engine per credential, so a fixed community index (at most 32 characters) cannot clash.
        return CommunityData("caretaker", credential.community.reveal(), mpModel=1)
    return UsmUserData(credential.user, credential.auth_key.reveal(), credential.priv_key.reveal(),
                       authProtocol=_AUTH[credential.auth_protocol], privProtocol=_PRIV[credential.priv_protocol])


def _context(credential: Credential) -> ContextData:
    if isinstance(credential, CommunityCredential):
        return ContextData()
    return ContextData(contextName=credential.context)


async def _transport(target: Target) -> UdpTransportTarget:
    try:
        return await UdpTransportTarget.create((target.host, target.port), timeout=target.timeout,
                                               retries=target.retries)
    except PySnmpError as exc:  # how pysnmp reports a name that does not resolve
        raise SnmpError(f"cannot resolve {target.host}: {exc}") from None


def _check(target: Target, indication: object, status: object, index: object, asked: Sequence[str]) -> None:
    where = f"{target.host}:{target.port}"
    if isinstance(indication, errind.RequestTimedOut):
        raise SnmpTimeout(f"no answer from {where} within {target.worst_case_seconds:g} s")
    if isinstance(indication, _REFUSED):
        raise SnmpAuthError(f"{where} refused credential {target.credential.name}: {indication}")
    if indication:
        raise SnmpError(f"{where}: {indication}")
    if status and int(status):
        position = int(index or 0)
        at = f" at {asked[position - 1]}" if 0 < position <= len(asked) else ""
        raise SnmpError(f"{where} answered {status.prettyPrint()}{at}")


def _value(value: object) -> Value | None:
    kind = _KINDS.get(getattr(value, "tagSet", None))
    if kind is None or isinstance(value, _ABSENT):
        return None
    if kind in (Kind.OCTETS, Kind.OPAQUE):
        return Value(kind, value.asOctets())
    if kind is Kind.IPADDRESS:
        return Value(kind, socket.inet_ntoa(value.asOctets()))
    if kind is Kind.OID:
        return Value(kind, str(value))
    return Value(kind, int(value))
