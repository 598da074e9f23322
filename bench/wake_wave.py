"""Does a wave of wakes hold its configured rate? 10,000 magic packets at N per second per site.

The real dispatcher (``controller.power.service.WakeService``, its thread and its database) releases
queued wakes onto loopback, where a UDP listener timestamps every packet it receives and checks it
byte for byte. The peer, measured in the same run, is the naive way: a loop sending all 10,000 as
fast as it can, which is the inrush a wave exists to prevent (600 PCs booting at 07:30 at once).

    .venv/bin/python bench/wake_wave.py                      # 10,000 wakes at 500/s (about 20 s)
    .venv/bin/python bench/wake_wave.py --wakes 2000 --rate 100

It prints the achieved rate, its error against the configured rate, the busiest second, and the same
for the naive loop. The target: the achieved rate within 5 % of the configured one.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from controller import migrate
from controller.db import make_engine
from controller.power.magic import MagicSender
from controller.power.service import WakeService
from controller.power.wake import WakeConfig, request_wakes
from controller.register.models import Device, Site
from controller.settings import Settings
from controller.timeutil import utcnow


def mac_of(i: int) -> str:
    return "02:" + ":".join(f"{(i >> shift) & 0xFF:02x}" for shift in (32, 24, 16, 8, 0))


class Listener:
    """Counts packets with their arrival times; a wrong packet is counted apart, never as a wake."""

    def __init__(self, expected: set[bytes]):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.settimeout(0.5)
        self.expected = expected
        self.times: list[float] = []
        self.wrong = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(1024)
            except TimeoutError:
                continue
            if data in self.expected:
                self.times.append(time.perf_counter())
            else:
                self.wrong += 1

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.times) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@dataclass(frozen=True)
class Figures:
    received: int
    seconds: float
    rate: float
    busiest_second: int


def figures(times: list[float]) -> Figures:
    if len(times) < 2:
        return Figures(len(times), 0.0, 0.0, len(times))
    span = times[-1] - times[0]
    busiest, start = 0, 0
    for end, moment in enumerate(times):  # most packets in any one-second window
        while moment - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return Figures(len(times), span, (len(times) - 1) / span if span else float("inf"), busiest)


def paced(wakes: int, rate: float, workdir: Path) -> tuple[Figures, float, int]:
    engine = make_engine(f"sqlite:///{workdir / 'wave.db'}")
    migrate.upgrade(engine)
    macs = [mac_of(i) for i in range(wakes)]
    listener = Listener({bytes.fromhex("ff" * 6 + m.replace(":", "") * 16) for m in macs})
    nic = {"name": "eth0", "ipv4": ["127.0.0.9"], "ipv4_prefixes": [8]}
    with Session(engine) as session:
        site = Site(name="Bench Academy")
        session.add(site)
        session.flush()
        session.add_all(Device(site_id=site.id, hostname=f"PC{i:05d}", device_class="desktop",
                               inventory={"hostname": f"PC{i:05d}", "nics": [{**nic, "mac": mac}]})
                        for i, mac in enumerate(macs))
        session.commit()
    settings = Settings(database_url=str(engine.url), wake_per_second=rate, wake_port=listener.port,
                        wake_local_networks=["127.0.0.0/8"])
    service = WakeService(engine, settings)
    began = time.perf_counter()
    with Session(engine) as session:
        devices = list(session.exec(select(Device).order_by(Device.id)).all())
        request_wakes(session, devices, "bench wave", "bench", utcnow(), WakeConfig.from_settings(settings))
        session.commit()
    queued_in = time.perf_counter() - began
    service.start()
    listener.wait_for(wakes, timeout=wakes / rate * 2 + 30)
    service.stop()
    listener.close()
    engine.dispose()
    return figures(listener.times), queued_in, listener.wrong


def naive(wakes: int) -> Figures:
    macs = [mac_of(i) for i in range(wakes)]
    listener = Listener({bytes.fromhex("ff" * 6 + m.replace(":", "") * 16) for m in macs})
    sender = MagicSender()
    for mac in macs:
        sender.send(mac, "127.255.255.255", listener.port)
    listener.wait_for(wakes, timeout=5)
    sender.close()
    listener.close()
    return figures(listener.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wakes", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0, help="configured wakes per second per site")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        wave, queued_in, wrong = paced(args.wakes, args.rate, Path(workdir))
    peer = naive(args.wakes)
    error = (wave.rate - args.rate) / args.rate * 100
    print(f"wakes: {args.wakes}, configured rate: {args.rate:g}/s per site (one site)")
    print(f"queueing the wave (request_wakes, one transaction): {queued_in:.2f} s")
    print(f"paced wave:  received {wave.received}/{args.wakes} in {wave.seconds:.2f} s = {wave.rate:.1f}/s "
          f"({error:+.2f} % of configured), busiest second {wave.busiest_second} packets, wrong packets {wrong}")
    print(f"naive loop:  received {peer.received}/{args.wakes} in {peer.seconds:.3f} s = {peer.rate:.0f}/s, "
          f"busiest second {peer.busiest_second} packets")
    print(f"naive / paced rate: {peer.rate / wave.rate:.0f}x; busiest second: "
          f"{peer.busiest_second / max(wave.busiest_second, 1):.1f}x")
    print("target (within 5 %):", "met" if abs(error) <= 5 and wave.received == args.wakes else "NOT met")


if __name__ == "__main__":
    main()
