"""The SnmpClient protocol over pysnmp 7's asyncio API.

SNMPv2c goes through pysnmp's message-level dispatcher (``hlapi.v1arch``): a community travels in
the message itself, so one dispatcher and one socket serve every device and nothing is configured
per target. SNMPv3 needs the full engine (``hlapi.v3arch``) for its users and keys: one SnmpEngine
per credential, since pysnmp keeps users in the engine's local configuration keyed by user name, so
two devices whose v3 users share a name but not a key would overwrite each other in a shared
engine. The engine writes every new target address into its MIB instrumentation, several
milliseconds of CPU a device, which is why v2c (the common case in schools) avoids it: the first
poll round after a start of 1,000 devices took 49.6 s that way (bench/README.md).

Engines and the dispatcher are kept for the client's lifetime; use the client as an async context
manager so their sockets are closed. Walks use GETBULK. Responses skip MIB lookups: the profiles
speak numeric OIDs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Sequence
from types import TracebackType

from pyasn1.error import PyAsn1Error
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v1arch.asyncio import CommunityData as MessageCommunity
from pysnmp.hlapi.v1arch.asyncio import SnmpDispatcher
from pysnmp.hlapi.v1arch.asyncio import UdpTransportTarget as MessageTransport
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
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.api import v2c

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
_GET, _NEXT, _BULK = "get", "next", "bulk"
_TOO_BIG = 1  # SNMP error status
Answer = tuple[object, object, object, list]  # error indication, status, index, variable bindings


class PysnmpClient:
    # Most columns a profile walks hold 0-14 rows (outlets, supplies, phases): 10 per GETBULK answers
    # them in one request without decoding dozens of rows past the column's end (bench/snmp_poll.py:
    # a third less CPU on both sides than 25).
    def __init__(self, max_repetitions: int = 10, oids_per_get: int = 48, oids_per_next: int = 48,
                 rows_per_answer: int = 100) -> None:
        self.max_repetitions = max_repetitions
        self.oids_per_get = oids_per_get
        self.oids_per_next = oids_per_next
        self.rows_per_answer = rows_per_answer
        # Rows each column of each device had at its last walk: a device is walked every round, and
        # its tables rarely change length, so the next walk asks for as many rows as it will find.
        self._rows_seen: dict[tuple[str, int, str], int] = {}
        self._engines: dict[str, SnmpEngine] = {}
        self._dispatcher: SnmpDispatcher | None = None
        # A round asks every device for the same OIDs and each device many times: pysnmp resolves an
        # ObjectType against its MIB view once and a transport's address once, so both are kept.
        self._names: dict[str, ObjectType] = {}
        self._transports: dict[tuple[str, int, float, int], UdpTransportTarget] = {}
        self._message_transports: dict[tuple[str, int, float, int], MessageTransport] = {}

    async def __aenter__(self) -> PysnmpClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._engines.clear()
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None

    async def get(self, target: Target, oid_list: Sequence[str]) -> dict[str, Value]:
        found: dict[str, Value] = {}
        for start in range(0, len(oid_list), self.oids_per_get):
            for _, (name, value) in await self._ask_fitting(target, _GET, oid_list[start:start + self.oids_per_get]):
                converted = _value(value)
                if converted is not None:
                    found[str(name)] = converted
        return found

    async def next(self, target: Target, oid_list: Sequence[str]) -> dict[str, tuple[str, Value]]:
        found: dict[str, tuple[str, Value]] = {}
        for start in range(0, len(oid_list), self.oids_per_next):
            chunk = oid_list[start:start + self.oids_per_next]
            for asked, (name, value) in await self._ask_fitting(target, _NEXT, chunk):
                converted = _value(value)
                if converted is not None:
                    found[asked] = (str(name), converted)
        return found

    async def _ask_fitting(self, target: Target, operation: str, asked: Sequence[str]) -> list[tuple[str, tuple]]:
        """(OID asked, variable binding) for each; an agent that answers tooBig (a GET or GETNEXT whose
        answer would not fit its buffer: many small agents stop near 1,500 bytes) is asked in halves."""
        try:
            return list(zip(asked, await self._ask(target, operation, asked), strict=False))
        except _TooBig:
            if len(asked) == 1:
                raise SnmpError(f"{target.host}:{target.port}: the answer to {asked[0]} is too big to send") from None
            half = len(asked) // 2
            return (await self._ask_fitting(target, operation, asked[:half])
                    + await self._ask_fitting(target, operation, asked[half:]))

    async def walk(self, target: Target, prefix: str, max_rows: int = 5000) -> list[tuple[str, Value]]:
        return (await self.walk_many(target, [prefix], max_rows))[prefix]

    async def walk_many(self, target: Target, prefixes: Sequence[str],
                        max_rows: int = 5000) -> dict[str, list[tuple[str, Value]]]:
        """Several subtrees in lockstep: each GETBULK asks for the next rows of every one still open, so
        a profile's seven short columns cost one request, not seven. Answers come row by row, so the
        n-th variable belongs to the (n mod columns)-th column asked."""
        return await self._walk(target, prefixes, max_rows, (), {})

    async def get_and_walk(self, target: Target, oid_list: Sequence[str],
                           prefixes: Sequence[str]) -> tuple[dict[str, Value], dict[str, list[tuple[str, Value]]]]:
        """The GETs ride in the first GETBULK as its non-repeaters, each asked as the next of the OID
        before it (``oids.before``) and kept only if the answer is the object asked: a device is asked
        its scalars and its tables in one request where they fit."""
        if not oid_list or not prefixes or len(oid_list) > self.oids_per_get:
            values = await self.get(target, oid_list) if oid_list else {}
            return values, (await self.walk_many(target, prefixes) if prefixes else {})
        values: dict[str, Value] = {}
        return values, await self._walk(target, prefixes, 5000, oid_list, values)

    async def _walk(self, target: Target, prefixes: Sequence[str], max_rows: int, gets: Sequence[str],
                    values: dict[str, Value]) -> dict[str, list[tuple[str, Value]]]:
        rows: dict[str, list[tuple[str, Value]]] = {p: [] for p in prefixes}
        last = {p: p for p in rows}
        still_open = list(rows)
        while still_open:
            columns, repetitions = self._batch(target, still_open, rows, max_rows)
            asked = [oids.before(g) for g in gets] + [last[c] for c in columns]
            var_binds = await self._ask(target, _BULK, asked, repetitions, non_repeaters=len(gets))
            for wanted, (name, value) in zip(gets, var_binds[:len(gets)], strict=False):
                converted = _value(value)
                if str(name) == wanted and converted is not None:
                    values[wanted] = converted
            var_binds, gets = var_binds[len(gets):], ()
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
        self._rows_seen.update({(target.host, target.port, p): len(found) for p, found in rows.items()})
        return rows

    def _batch(self, target: Target, still_open: list[str], rows: dict[str, list],
               max_rows: int) -> tuple[list[str], int]:
        """The columns to ask next and how many rows of each. Columns walked before are asked for the
        rows they had then, plus one to see them end, the shortest together, at most
        ``rows_per_answer`` rows a request; new ones ten rows a request between them, at least two
        each so a one-row column is seen to end at once."""
        expected = {c: max(0, seen - len(rows[c])) + 1 for c in still_open
                    if (seen := self._rows_seen.get((target.host, target.port, c))) is not None}
        new = [c for c in still_open if c not in expected]
        if new:
            columns = new[:self.oids_per_get]
            return columns, min(max(2, -(-self.max_repetitions // len(columns))), max_rows)
        columns: list[str] = []
        for column in sorted(still_open, key=lambda c: expected[c]):
            if columns and (len(columns) >= self.oids_per_get
                            or (len(columns) + 1) * expected[column] > self.rows_per_answer):
                break
            columns.append(column)
        rows_each = min(max(expected[c] for c in columns), self.rows_per_answer // len(columns))
        return columns, min(max(2, rows_each), max_rows)

    async def _ask(self, target: Target, operation: str, asked: Sequence[str], repetitions: int = 0,
                   non_repeaters: int = 0) -> list:
        """One request; its variable bindings, or the error as SnmpError."""
        if isinstance(target.credential, CommunityCredential):
            answer = await self._ask_by_message(target, operation, asked, repetitions, non_repeaters)
        else:
            answer = await self._ask_by_engine(target, operation, asked, repetitions, non_repeaters)
        _check(target, answer[0], answer[1], answer[2], asked)
        return list(answer[3])

    async def _ask_by_message(self, target: Target, operation: str, asked: Sequence[str], repetitions: int,
                              non_repeaters: int) -> Answer:
        if self._dispatcher is None:
            self._dispatcher = SnmpDispatcher()
        pdu = {_GET: v2c.GetRequestPDU, _NEXT: v2c.GetNextRequestPDU, _BULK: v2c.GetBulkRequestPDU}[operation]()
        v2c.apiPDU.set_defaults(pdu)
        if operation == _BULK:
            v2c.apiBulkPDU.set_non_repeaters(pdu, non_repeaters)
            v2c.apiBulkPDU.set_max_repetitions(pdu, repetitions)
        v2c.apiPDU.set_varbinds(pdu, [(rfc1902.ObjectName(oid), v2c.null) for oid in asked])
        answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

        def received(dispatcher: object, request: object, indication: object = None, response: object = None,
                     context: object = None) -> None:  # closing the dispatcher calls with four arguments
            if answered.done():
                return
            if indication or response is None:
                answered.set_result((indication or "no response", 0, 0, []))
                return
            answered.set_result((None, v2c.apiPDU.get_error_status(response), v2c.apiPDU.get_error_index(response),
                                 v2c.apiPDU.get_varbinds(response)))

        community = MessageCommunity(target.credential.community.reveal(), mpModel=1)
        try:
            self._dispatcher.send_pdu(community, await self._message_transport(target), pdu, received)
            return await answered
        except (PySnmpError, PyAsn1Error, OSError) as exc:
            raise SnmpError(f"{target.host}:{target.port}: {exc}") from None

    async def _ask_by_engine(self, target: Target, operation: str, asked: Sequence[str], repetitions: int,
                             non_repeaters: int) -> Answer:
        engine, auth = self._engine(target.credential), _auth(target.credential)
        transport, context = await self._transport(target), _context(target.credential)
        if operation == _BULK:
            request = bulk_cmd(engine, auth, transport, context, non_repeaters, repetitions,
                               *(self._name(o) for o in asked), lookupMib=False)
        else:
            command = get_cmd if operation == _GET else next_cmd
            request = command(engine, auth, transport, context, *(self._name(o) for o in asked), lookupMib=False)
        return await _guarded(target, request)

    def _name(self, oid: str) -> ObjectType:
        name = self._names.get(oid)
        if name is None:
            name = self._names[oid] = ObjectType(ObjectIdentity(oid))
        return name

    async def _transport(self, target: Target) -> UdpTransportTarget:
        key = (target.host, target.port, target.timeout, target.retries)
        transport = self._transports.get(key)
        if transport is None:
            transport = self._transports[key] = await _transport(UdpTransportTarget, target)
        return transport

    async def _message_transport(self, target: Target) -> MessageTransport:
        key = (target.host, target.port, target.timeout, target.retries)
        transport = self._message_transports.get(key)
        if transport is None:
            transport = self._message_transports[key] = await _transport(MessageTransport, target)
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


def _auth(credential: Credential) -> UsmUserData:
    return UsmUserData(credential.user, credential.auth_key.reveal(), credential.priv_key.reveal(),
                       authProtocol=_AUTH[credential.auth_protocol], privProtocol=_PRIV[credential.priv_protocol])


def _context(credential: Credential) -> ContextData:
    return ContextData(contextName=credential.context)


async def _transport(kind: type, target: Target):
    if _is_ipv4(target.host):  # as create() builds it, without a resolver thread per device
        transport = kind.__new__(kind)
        transport.transport_address = (target.host, target.port)
        transport.__init__(timeout=target.timeout, retries=target.retries)
        return transport
    try:
        return await kind.create((target.host, target.port), timeout=target.timeout, retries=target.retries)
    except PySnmpError as exc:  # how pysnmp reports a name that does not resolve
        raise SnmpError(f"cannot resolve {target.host}: {exc}") from None


def _is_ipv4(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
    except ValueError:
        return False


class _TooBig(SnmpError):
    """The agent's answer would not fit in one message (SNMP error status tooBig)."""


def _check(target: Target, indication: object, status: object, index: object, asked: Sequence[str]) -> None:
    where = f"{target.host}:{target.port}"
    if isinstance(indication, errind.RequestTimedOut):
        raise SnmpTimeout(f"no answer from {where} within {target.worst_case_seconds:g} s")
    if isinstance(indication, _REFUSED):
        raise SnmpAuthError(f"{where} refused credential {target.credential.name}: {indication}")
    if indication:
        raise SnmpError(f"{where}: {indication}")
    if status and int(status) == _TOO_BIG:
        raise _TooBig(f"{where} answered tooBig")
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
