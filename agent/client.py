"""HTTPS to the controller: enrol once, then post report batches; plus the backoff used between tries.

Only http.client and ssl, so the agent stays light. The controller's certificate is always verified, against
``ca_file`` (the school's CA or the controller's own) or else the system trust store; there is no
switch to turn that off, because an agent that would post its secret to any listener on the school
network is worse than one that reports nothing. Redirects are refused for the same reason: they would
carry the Authorization header to wherever the redirect points.

Every way an exchange can fail is one exception type the runner can act on without parsing text, and
every message is safe to log: it never carries the token, the secret or a request body.
"""

from __future__ import annotations

import http.client
import json
import random
import ssl
from collections.abc import Callable, Sequence
from email.message import Message
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from agent import __version__
from agent.credentials import Credentials
from agent.protocol import (
    MAX_BATCH_REPORTS,
    PROTOCOL_VERSION,
    BatchAck,
    EnrollRequest,
    EnrollResponse,
    Inventory,
    ProtocolError,
    from_wire,
    to_wire,
)

ENROLL_PATH = "/api/v1/agent/enroll"
REPORTS_PATH = "/api/v1/agent/reports"
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_ANSWER_BYTES = 1 << 20  # an answer bigger than this is not from our controller
MAX_DETAIL_CHARS = 200  # keeps a chatty error page from flooding the log

T = TypeVar("T")


class ClientError(Exception):
    """An exchange with the controller failed. The message is one line, safe to log."""


class ControllerUnavailable(ClientError):
    """Unreachable, overloaded (5xx, 429) or answering nonsense: try again later, and not before
    ``retry_after`` seconds when the controller said so (503 while its database is away)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CertificateRejected(ControllerUnavailable):
    """The controller's certificate did not verify. Retried like an outage (a certificate can be
    renewed), but named apart so the log says what an operator must fix."""


class Unauthorized(ClientError):
    """401: the token or the agent's credentials are unknown, expired or revoked."""


class PayloadTooLarge(ClientError):
    """413: the batch is over the controller's body limit; send fewer reports at once."""


class ReportsRejected(ClientError):
    """422 naming reports the controller will never accept; retrying them cannot help."""

    def __init__(self, message: str, seqs: tuple[int, ...]) -> None:
        super().__init__(message)
        self.seqs = seqs


class RequestRefused(ClientError):
    """Any other refusal (400, 404, a redirect…): the request or the configuration is wrong."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Backoff:
    """Exponential backoff with full jitter: the n-th delay is uniform in [0, min(cap, base·2ⁿ)].

    Full jitter rather than a fixed ladder because a whole school's agents lose the controller at the
    same moment; drawn uniformly over the window they come back spread out instead of in waves.
    """

    def __init__(self, base: float = 2.0, cap: float = 300.0,
                 random: Callable[[], float] = random.random) -> None:
        if not 0 < base <= cap:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._random = random
        self._failures = 0

    @property
    def failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    def next_delay(self) -> float:
        """Seconds to wait after one more failure."""
        ceiling = min(self.cap, self.base * 2 ** min(self._failures, 64))
        self._failures += 1
        return ceiling * self._random()

    def at_least(self, seconds: float) -> float:
        """A delay after one more failure of no less than ``seconds`` (a controller's Retry-After), spread
        over up to half as much again so a school's agents do not all return in the same second."""
        return max(self.next_delay(), min(self.cap, seconds) * (1 + self._random() / 2))

    def reset(self) -> None:
        """The controller answered: start again from ``base``."""
        self._failures = 0


class Client:
    """One controller, reached over verified HTTPS. Never reads hardware; the caller brings the data."""

    def __init__(self, controller: str, ca_file: Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        if not controller.lower().startswith("https://"):
            raise ValueError(f"the controller URL must start with https://, not {controller!r}")
        self.controller = controller.rstrip("/")
        parts = urlsplit(self.controller)
        if not parts.hostname:
            raise ValueError(f"the controller URL {controller!r} has no host name")
        self._host, self._port, self._base_path = parts.hostname, parts.port, parts.path
        self._timeout = timeout
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)

    def enroll(self, token: str, inventory: Inventory) -> EnrollResponse:
        """Trade the site's enrolment token for this agent's identity."""
        request = EnrollRequest(protocol_version=PROTOCOL_VERSION, token=token, inventory=inventory)
        answer = self._post(ENROLL_PATH, json.dumps(to_wire(request)).encode(), authorization=None)
        return self._decode(EnrollResponse, answer)

    def send(self, credentials: Credentials, reports: Sequence[str], schedule_version: str | None = None) -> BatchAck:
        """Post spooled reports (each already the JSON of one Report) as one ReportBatch, saying which power
        schedule the agent holds so the controller sends it only when it changed."""
        if not 1 <= len(reports) <= MAX_BATCH_REPORTS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_REPORTS} reports, not {len(reports)}")
        # The spool keeps each report as the JSON to_wire made of it, so the batch is assembled
        # without decoding and re-encoding every report.
        held = "" if schedule_version is None else f',"schedule_version":{json.dumps(schedule_version)}'
        body = f'{{"protocol_version":{PROTOCOL_VERSION},"reports":[{",".join(reports)}]{held}}}'
        answer = self._post(REPORTS_PATH, body.encode(), authorization=credentials.authorization)
        return self._decode(BatchAck, answer)

    # --- internals ------------------------------------------------------------------------------

    def _post(self, path: str, body: bytes, authorization: str | None) -> bytes:
        """One POST on a fresh connection. http.client never follows redirects, so the credentials
        cannot be carried to another host; a redirect is refused like any other unexpected answer."""
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": f"caretaker-agent/{__version__}"}
        if authorization is not None:
            headers["Authorization"] = authorization
        connection = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                                 context=self._context)
        try:
            connection.request("POST", self._base_path + path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read(MAX_ANSWER_BYTES)
        except ssl.SSLCertVerificationError as reason:
            raise CertificateRejected(
                f"{self.controller}: certificate not trusted ({reason.verify_message}); check --ca-file") from None
        except ConnectionRefusedError as failure:
            raise ControllerUnavailable(f"cannot reach {self.controller}: {_one_line(str(failure))}") from None
        except (OSError, http.client.HTTPException) as failure:  # timeouts, resets, unresolvable names
            why = _one_line(str(failure) or type(failure).__name__)
            raise ControllerUnavailable(f"{self.controller} did not answer: {why}") from None
        finally:
            connection.close()
        if 200 <= response.status < 300:
            return payload
        raise self._refusal(response.status, payload, response.headers)

    def _refusal(self, status: int, payload: bytes, headers: Message) -> ClientError:
        detail, rejected = _parse_error(payload)
        message = f"{self.controller} answered {status}" + (f": {detail}" if detail else "")
        if status == 401:
            return Unauthorized(message)
        if status == 413:
            return PayloadTooLarge(message)
        if status == 422 and rejected:
            return ReportsRejected(message, rejected)
        if status == 429 or status >= 500:
            return ControllerUnavailable(message, _retry_after(headers.get("Retry-After")))
        if 300 <= status < 400:
            return RequestRefused(f"{self.controller} redirects to {headers.get('Location')}; "
                                  "use that URL as --controller",
                                  status)
        return RequestRefused(message, status)

    def _decode(self, cls: type[T], payload: bytes) -> T:
        try:
            return from_wire(cls, json.loads(payload))
        except (ValueError, ProtocolError) as exc:
            raise ControllerUnavailable(
                f"{self.controller} answered with something that is not a {cls.__name__}: "
                f"{_one_line(str(exc))}") from None


def _parse_error(payload: bytes) -> tuple[str, tuple[int, ...]]:
    """The controller's ``detail`` and ``rejected`` seqs, from whatever the error body turns out to be."""
    try:
        data = json.loads(payload)
    except ValueError:
        return _one_line(payload.decode("utf-8", "replace")), ()
    if not isinstance(data, dict):
        return _one_line(json.dumps(data)), ()
    detail = data.get("detail", "")
    rejected = data.get("rejected", ())
    seqs = tuple(s for s in rejected if isinstance(s, int) and not isinstance(s, bool)) \
        if isinstance(rejected, list) else ()
    return _one_line(detail if isinstance(detail, str) else json.dumps(detail)), seqs


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; the HTTP-date form is not worth a clock comparison here."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= 86_400 else None


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_DETAIL_CHARS else flat[:MAX_DETAIL_CHARS - 1] + "…"
