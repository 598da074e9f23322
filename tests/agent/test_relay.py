"""The agent's wake relay: ordered packets reach a real UDP socket, byte for byte, each at its time,
once, and the ids sent are handed over for the next report exactly once."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from agent.protocol import WakeOrder
from agent.relay import Relay

MAC = "00:1a:2b:3c:4d:5e"


def magic(mac: str) -> bytes:
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) * 16


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    sock.settimeout(2.0)
    yield sock
    sock.close()


def test_an_ordered_wake_reaches_the_subnet_broadcast_address_as_a_magic_packet(listener):
    relay = Relay()
    port = listener.getsockname()[1]
    relay.accept([WakeOrder(wake_id=7, mac=MAC, address="127.255.255.255", port=port)])
    data, _ = listener.recvfrom(1024)
    relay.stop()
    assert data == magic(MAC)
    deadline = time.monotonic() + 2
    sent = ()
    while not sent and time.monotonic() < deadline:
        sent = relay.take_sent()
    assert sent == (7,)
    assert relay.take_sent() == ()  # handed over once


def test_orders_go_out_at_their_delays_not_at_once():
    clock = [100.0]
    sent: list[tuple[str, str, int]] = []
    relay = Relay(send=lambda mac, address, port: sent.append((mac, address, port)), monotonic=lambda: clock[0],
                  background=False)
    relay.accept([WakeOrder(1, "00:00:00:00:00:01", "10.1.0.255", 9, 0.0),
                  WakeOrder(2, "00:00:00:00:00:02", "10.1.0.255", 9, 0.5),
                  WakeOrder(3, "00:00:00:00:00:03", "10.1.0.255", 9, 1.0)])
    assert relay.send_due() == 1
    clock[0] += 0.6
    assert relay.send_due() == 1
    clock[0] += 0.5
    assert relay.send_due() == 1
    assert [mac[-1] for mac, _, _ in sent] == ["1", "2", "3"]
    assert relay.take_sent() == (1, 2, 3)


def test_an_order_repeated_before_it_is_reported_is_sent_once():
    sent: list[str] = []
    relay = Relay(send=lambda mac, address, port: sent.append(mac), background=False)
    order = WakeOrder(5, MAC, "10.1.0.255", 9)
    relay.accept([order])
    relay.accept([order])
    relay.send_due()
    assert sent == [MAC]


def test_a_packet_that_could_not_be_sent_is_not_reported_sent():
    def refuse(mac: str, address: str, port: int) -> None:
        raise OSError("Network is unreachable")

    relay = Relay(send=refuse, background=False)
    relay.accept([WakeOrder(9, MAC, "10.1.0.255", 9)])
    assert relay.send_due() == 0
    assert relay.take_sent() == ()
