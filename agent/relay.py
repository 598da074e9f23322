"""Wake relay: sends the magic packets the controller orders on this agent's own subnet.

Routers do not forward broadcasts between VLANs, so the controller asks an agent that lives on the
target's subnet. Orders arrive in report replies, each with a delay that keeps the wave's pace; a
thread sends each one when its time comes, and the ids sent ride on the next report
(``Report.relayed_wakes``), so the controller can tell "sent" from "lost with the relay".
Nothing here reads hardware.
"""

from __future__ import annotations

import heapq
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable

from agent.protocol import MAX_WAKE_ORDERS, WakeOrder

LOG = logging.getLogger("caretaker.agent.relay")


def send_magic_packet(sock: socket.socket, mac: str, address: str, port: int) -> None:
    import wakeonlan  # here, not at the top: it brings typing_extensions, 0.2 MiB an agent that never relays keeps

    sock.sendto(wakeonlan.create_magic_packet(mac), (address, port))


def broadcast_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    return sock


class Relay:
    """Orders in, "sent" ids out. The sending thread starts with the first order, so an agent that is
    never elected relay pays nothing."""

    def __init__(self, send: Callable[[str, str, int], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic, background: bool = True) -> None:
        self._send = send
        self._background = background  # False: the caller drives ``send_due`` (tests)
        self._monotonic = monotonic
        self._due: list[tuple[float, int, WakeOrder]] = []
        self._known: set[int] = set()  # queued or sent, not yet reported: an order repeated is sent once
        self._sent: list[int] = []
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def accept(self, orders: Iterable[WakeOrder]) -> None:
        now = self._monotonic()
        with self._lock:
            for order in orders:
                if order.wake_id in self._known or len(self._due) >= MAX_WAKE_ORDERS:
                    continue
                self._known.add(order.wake_id)
                heapq.heappush(self._due, (now + order.delay_seconds, order.wake_id, order))
            self._lock.notify()
            if self._due and self._thread is None and self._background:
                self._thread = threading.Thread(target=self._run, name="wake-relay", daemon=True)
                self._thread.start()

    def take_sent(self) -> tuple[int, ...]:
        """The ids sent since the last call, for the next report."""
        with self._lock:
            sent, self._sent = tuple(self._sent), []
            self._known.difference_update(sent)
            return sent

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def send_due(self) -> int:
        """Send every order whose time has come; returns how many went out."""
        sent = 0
        while True:
            with self._lock:
                if not self._due or self._due[0][0] > self._monotonic():
                    return sent
                _, _, order = heapq.heappop(self._due)
            try:
                self._sender()(order.mac, order.address, order.port)
            except OSError as exc:
                # Not reported as sent: the controller routes it again after its grace period.
                LOG.warning("could not send wake %d to %s:%d: %s", order.wake_id, order.address, order.port, exc)
                with self._lock:
                    self._known.discard(order.wake_id)
                continue
            with self._lock:
                self._sent.append(order.wake_id)
            sent += 1

    def _sender(self) -> Callable[[str, str, int], None]:
        if self._send is None:
            sock = broadcast_socket()
            self._send = lambda mac, address, port: send_magic_packet(sock, mac, address, port)
        return self._send

    def _run(self) -> None:
        while True:
            self.send_due()
            with self._lock:
                if self._stopping:
                    return
                wait = self._due[0][0] - self._monotonic() if self._due else None
                if wait is None or wait > 0:
                    self._lock.wait(timeout=wait)
