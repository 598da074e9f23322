"""Sending magic packets from the controller: the packet from the ``wakeonlan`` library, one UDP socket
kept open (a wave of thousands must not open a socket per packet)."""

from __future__ import annotations

import socket
import threading

import wakeonlan


class MagicSender:
    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self._lock = threading.Lock()

    def send(self, mac: str, address: str, port: int) -> None:
        """One magic packet (6 × 0xFF, then the MAC 16 times) to ``address``:``port``; raises OSError."""
        packet = wakeonlan.create_magic_packet(mac)
        with self._lock:
            self._socket.sendto(packet, (address, port))

    def close(self) -> None:
        self._socket.close()
