"""The HTTPS client against a real TLS server on loopback, and the backoff between its tries.

``FakeController`` and the certificate helpers here are also used by test_cli.py, so the agent process
there talks to the same kind of peer.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.client import (
    Backoff,
    CertificateRejected,
    Client,
    ClientError,
    ControllerUnavailable,
    PayloadTooLarge,
    ReportsRejected,
    RequestRefused,
    Unauthorized,
)
from agent.credentials import Credentials
from agent.protocol import (
    Activity,
    BatchAck,
    EnrollRequest,
    EnrollResponse,
    Inventory,
    OperatingSystem,
    PowerState,
    Report,
    ReportBatch,
    from_wire,
    to_wire,
)

TOKEN = "tok-Zq8Lr2"
SECRET = "sec-Hw4Jp7"

# --- certificates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: Path  # the CA that signed the controller's certificate
    other_ca_file: Path  # a CA that signed nothing here
    cert_file: Path  # the controller's certificate, for 127.0.0.1 and localhost
    key_file: Path
    wrong_name_cert_file: Path  # signed by the right CA, but for another host name
    wrong_name_key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey],
                 *, ca: bool, sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject)).issuer_name(_name(issuer[0]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
                              critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer[1], hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


def make_pki(directory: Path) -> Pki:
    """A school CA, a stranger's CA, and controller certificates signed by the school CA."""
    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("School CA", ca_key, ("School CA", ca_key), ca=True)
    other = _certificate("Stranger CA", other_key, ("Stranger CA", other_key), ca=True)
    leaf_key, wrong_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate("controller", leaf_key, ("School CA", ca_key), ca=False,
                        sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    wrong = _certificate("elsewhere", wrong_key, ("School CA", ca_key), ca=False,
                         sans=[x509.DNSName("elsewhere.example")])
    return Pki(ca_file=_write(directory / "ca.pem", ca), other_ca_file=_write(directory / "other-ca.pem", other),
               cert_file=_write(directory / "controller.pem", leaf),
               key_file=_write(directory / "controller.key", key=leaf_key),
               wrong_name_cert_file=_write(directory / "elsewhere.pem", wrong),
               wrong_name_key_file=_write(directory / "elsewhere.key", key=wrong_key))


# --- a controller on loopback ---------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as the controller received it."""

    path: str
    headers: dict[str, str]
    body: object


@dataclass(frozen=True)
class Answer:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up (a timeout test) is expected here, not a failure worth a traceback."""


class FakeController:
    """A real HTTPS server speaking the agent endpoints; ``respond`` decides each answer.

    By default it behaves like a healthy controller: enrolment succeeds and every report is accepted.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.requests: list[Seen] = []
        self.respond: Callable[[Seen], Answer] = self.healthy
        self.interval = 300
        controller = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen = Seen(self.path, dict(self.headers.items()), json.loads(raw))
                controller.requests.append(seen)
                answer = controller.respond(seen)
                time.sleep(answer.delay)
                payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                for name, value in {"Content-Type": "application/json", **answer.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"

    def healthy(self, seen: Seen) -> Answer:
        if seen.path.endswith("/enroll"):
            return Answer(201, to_wire(EnrollResponse(agent_id="ag-7", secret=SECRET, device_id=7, site="north",
                                                      report_interval_seconds=self.interval)))
        seqs = [report["seq"] for report in seen.body["reports"]]  # type: ignore[index]
        return Answer(200, to_wire(BatchAck(accepted=tuple(seqs), report_interval_seconds=self.interval)))

    def reports_received(self) -> list[int]:
        return [r["seq"] for s in self.requests if s.path.endswith("/reports") for r in s.body["reports"]]  # type: ignore[index]

    def __enter__(self) -> FakeController:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- fixtures and sample data ---------------------------------------------------------------------





def inventory() -> Inventory:
    return Inventory(hostname="lab-07", os=OperatingSystem(name="Linux", version="Debian GNU/Linux 12"))


def report_json(seq: int) -> str:
    start = dt.datetime(2026, 2, 16, 18, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=5 * seq)
    report = Report(seq=seq, start=start, end=start + dt.timedelta(minutes=5),
                    activity=Activity(state=PowerState.ACTIVE, cpu_percent=41.0))
    return json.dumps(to_wire(report))


CREDS = Credentials(controller="https://127.0.0.1", agent_id="ag-7", secret=SECRET, device_id=7, site="north")


# --- enrolment and sending ------------------------------------------------------------------------


def test_enrolment_sends_the_token_and_inventory_and_returns_the_identity(
        controller: FakeController, pki: Pki) -> None:
    answer = Client(controller.url, ca_file=pki.ca_file).enroll(TOKEN, inventory())

    assert answer == EnrollResponse(agent_id="ag-7", secret=SECRET, device_id=7, site="north")
    (seen,) = controller.requests
    assert seen.path == "/api/v1/agent/enroll"
    assert from_wire(EnrollRequest, seen.body) == EnrollRequest(protocol_version=1, token=TOKEN,
                                                                inventory=inventory())
    assert "Authorization" not in seen.headers


def test_a_batch_is_a_valid_report_batch_sent_with_the_agents_credentials(
        controller: FakeController, pki: Pki) -> None:
    controller.interval = 120

    ack = Client(controller.url + "/", ca_file=pki.ca_file).send(CREDS, [report_json(4), report_json(5)])

    assert ack == BatchAck(accepted=(4, 5), report_interval_seconds=120)
    (seen,) = controller.requests
    assert seen.path == "/api/v1/agent/reports"
    assert seen.headers["Authorization"] == f"Bearer ag-7:{SECRET}"
    assert seen.headers["User-Agent"].startswith("caretaker-agent/")
    batch = from_wire(ReportBatch, seen.body)
    assert [r.seq for r in batch.reports] == [4, 5]


# --- certificate verification ---------------------------------------------------------------------


def test_a_certificate_from_another_ca_is_refused_before_anything_is_sent(
        controller: FakeController, pki: Pki) -> None:
    with pytest.raises(CertificateRejected):
        Client(controller.url, ca_file=pki.other_ca_file).send(CREDS, [report_json(1)])

    assert controller.requests == []


def test_without_a_ca_file_the_system_store_decides_and_does_not_know_the_school_ca(
        controller: FakeController) -> None:
    with pytest.raises(CertificateRejected):
        Client(controller.url).enroll(TOKEN, inventory())

    assert controller.requests == []


def test_a_certificate_for_another_host_name_is_refused(pki: Pki) -> None:
    with FakeController(pki.wrong_name_cert_file, pki.wrong_name_key_file) as impostor, \
            pytest.raises(CertificateRejected):
        Client(impostor.url, ca_file=pki.ca_file).send(CREDS, [report_json(1)])


def test_plain_http_is_refused_outright() -> None:
    with pytest.raises(ValueError, match="https://"):
        Client("http://controller.school.example")


# --- refusals and failures ------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "error"), [
    (Answer(401, {"detail": "unknown agent"}), Unauthorized),
    (Answer(413, {"detail": "body too large"}), PayloadTooLarge),
    (Answer(422, {"detail": "protocol version 2 is not supported"}), RequestRefused),
    (Answer(400, {"detail": "bad request"}), RequestRefused),
    (Answer(404, "not found"), RequestRefused),
    (Answer(429, {"detail": "slow down"}), ControllerUnavailable),
    (Answer(500, {"detail": "internal error"}), ControllerUnavailable),
    (Answer(503, None), ControllerUnavailable),
    (Answer(200, ["not", "an", "ack"]), ControllerUnavailable),
])
def test_each_refusal_becomes_the_exception_the_runner_acts_on(
        controller: FakeController, pki: Pki, answer: Answer, error: type[ClientError]) -> None:
    controller.respond = lambda _seen: answer

    with pytest.raises(error) as caught:
        Client(controller.url, ca_file=pki.ca_file).send(CREDS, [report_json(1)])

    assert type(caught.value) is error
    assert SECRET not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_422_naming_reports_says_which_ones(controller: FakeController, pki: Pki) -> None:
    controller.respond = lambda _seen: Answer(422, {"detail": "report 2: cpu_percent out of range",
                                                    "rejected": [2]})

    with pytest.raises(ReportsRejected) as caught:
        Client(controller.url, ca_file=pki.ca_file).send(CREDS, [report_json(1), report_json(2)])

    assert caught.value.seqs == (2,)
    assert "cpu_percent out of range" in str(caught.value)


def test_a_503_says_how_long_to_wait(controller: FakeController, pki: Pki) -> None:
    controller.respond = lambda _seen: Answer(503, {"detail": "the database cannot answer just now"},
                                              {"Retry-After": "30"})

    with pytest.raises(ControllerUnavailable) as caught:
        Client(controller.url, ca_file=pki.ca_file).send(CREDS, [report_json(1)])

    assert caught.value.retry_after == 30
    assert Backoff(base=2.0, cap=300.0, random=lambda: 0.0).at_least(30) == 30


def test_a_redirect_is_not_followed_so_the_credentials_stay_put(controller: FakeController, pki: Pki) -> None:
    controller.respond = lambda _seen: Answer(307, None, {"Location": controller.url + "/elsewhere"})

    with pytest.raises(RequestRefused, match="redirects to"):
        Client(controller.url, ca_file=pki.ca_file).send(CREDS, [report_json(1)])

    assert [seen.path for seen in controller.requests] == ["/api/v1/agent/reports"]


def test_a_controller_that_hangs_times_out(controller: FakeController, pki: Pki) -> None:
    controller.respond = lambda seen: Answer(200, controller.healthy(seen).body, delay=2.0)
    started = time.monotonic()

    with pytest.raises(ControllerUnavailable):
        Client(controller.url, ca_file=pki.ca_file, timeout=0.3).send(CREDS, [report_json(1)])

    assert time.monotonic() - started < 1.5


def test_nobody_listening_is_an_outage(pki: Pki) -> None:
    with FakeController(pki.cert_file, pki.key_file) as gone:
        url = gone.url

    with pytest.raises(ControllerUnavailable, match="cannot reach"):
        Client(url, ca_file=pki.ca_file, timeout=2.0).send(CREDS, [report_json(1)])


# --- backoff --------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_restarts_after_a_success() -> None:
    backoff = Backoff(base=2.0, cap=60.0, random=lambda: 1.0)

    delays = [backoff.next_delay() for _ in range(8)]
    backoff.reset()

    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert backoff.next_delay() == 2.0


def test_backoff_draws_each_delay_uniformly_below_its_ceiling() -> None:
    draws = iter([0.5, 0.0, 0.25])
    backoff = Backoff(base=10.0, cap=1000.0, random=lambda: next(draws))

    assert [backoff.next_delay() for _ in range(3)] == [5.0, 0.0, 10.0]


def test_real_jitter_spreads_agents_that_failed_together() -> None:
    fleet = [Backoff(base=1.0, cap=300.0) for _ in range(200)]
    for backoff in fleet:
        for _ in range(5):
            backoff.next_delay()

    sixth = [backoff.next_delay() for backoff in fleet]

    assert all(0.0 <= d <= 32.0 for d in sixth)
    assert len({round(d, 3) for d in sixth}) > 150
    assert min(sixth) < 8.0 and max(sixth) > 24.0


def test_many_failures_do_not_overflow() -> None:
    backoff = Backoff(base=1.0, cap=300.0, random=lambda: 1.0)
    for _ in range(5000):
        delay = backoff.next_delay()

    assert delay == 300.0
    assert backoff.failures == 5000
