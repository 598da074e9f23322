"""Monitors are identified from their EDID: vendor code, model name and serial."""

from __future__ import annotations

import pytest

from agent.platform.edid import parse_edid, pnp_id
from agent.protocol import Monitor

from .conftest import SYSFS

DETAILED_TIMING_1080P = bytes.fromhex("023a801871382d40582c45000f282100001e")  # 148.5 MHz 1920×1080@60
RANGE_LIMITS = bytes.fromhex("000000fd00384c1e5311000a202020202020")
DUMMY_DESCRIPTOR = bytes.fromhex("000000100000000000000000000000000000")


def text_descriptor(tag: int, text: str) -> bytes:
    """An 18-byte display descriptor: 00 00 00 <tag> 00, then 13 bytes of text ended by LF, space padded."""
    body = text.encode("ascii")
    body = body + b"\n" + b" " * (12 - len(body)) if len(body) < 13 else body[:13]
    return bytes([0, 0, 0, tag, 0]) + body


def build_edid(vendor: str, product: int, serial_number: int, name: str, serial_text: str | None,
               week: int, year: int) -> bytes:
    """An EDID 1.4 base block laid out byte by byte as VESA E-EDID specifies it."""
    code = 0
    for letter in vendor:
        code = (code << 5) | (ord(letter) - ord("A") + 1)
    block = bytearray(128)
    block[0:8] = bytes.fromhex("00ffffffffffff00")  # header
    block[8:10] = code.to_bytes(2, "big")  # manufacturer: three 5-bit letters
    block[10:12] = product.to_bytes(2, "little")
    block[12:16] = serial_number.to_bytes(4, "little")
    block[16], block[17] = week, year - 1990
    block[18:20] = b"\x01\x04"  # EDID version 1.4
    block[20:25] = bytes([0xA5, 53, 30, 0x78, 0x3A])  # digital input, 53×30 cm, gamma 2.2, features
    block[25:35] = bytes.fromhex("ee91a3544c99260f5054")  # chromaticity
    block[35:38] = bytes.fromhex("a54b00")  # established timings
    block[38:54] = bytes.fromhex("d1c081c081809500a9c0b30001010101")  # standard timings
    block[54:72] = DETAILED_TIMING_1080P
    block[72:90] = text_descriptor(0xFF, serial_text) if serial_text else DUMMY_DESCRIPTOR
    block[90:108] = text_descriptor(0xFC, name)
    block[108:126] = RANGE_LIMITS
    block[126] = 0  # no extension blocks
    block[127] = -sum(block[:127]) % 256  # the 128 bytes sum to 0 mod 256
    return bytes(block)


DELL = build_edid("DEL", 0xA0F4, 0x4C4A3153, "DELL P2419H", "7MT0191R1SLL", week=31, year=2019)
AUO_PANEL = build_edid("AUO", 0x403D, 0, "B140HAN06.8", None, week=5, year=2020)


@pytest.mark.parametrize(("code", "letters"), [(0x10AC, "DEL"), (0x0610, "APP"), (0x30AE, "LEN"), (0x0000, None),
                                               (0x90AC, None)])
def test_pnp_id_letters(code: int, letters: str | None) -> None:
    assert pnp_id(code) == letters


def test_monitor_with_name_and_serial_descriptors() -> None:
    assert parse_edid(DELL) == Monitor(vendor="DEL", model="DELL P2419H", serial="7MT0191R1SLL")


def test_laptop_panel_without_a_serial_has_none() -> None:
    assert parse_edid(AUO_PANEL) == Monitor(vendor="AUO", model="B140HAN06.8", serial=None)


def test_numeric_serial_stands_in_when_there_is_no_serial_descriptor() -> None:
    edid = build_edid("GSM", 0x5B7F, 123456, "LG ULTRAFINE", None, week=1, year=2022)

    assert parse_edid(edid) == Monitor(vendor="GSM", model="LG ULTRAFINE", serial="123456")


def test_extension_blocks_after_the_base_block_are_ignored() -> None:
    with_extension = DELL + bytes(128)

    assert parse_edid(with_extension) == parse_edid(DELL)


@pytest.mark.parametrize("data", [
    pytest.param(b"", id="empty: connector with nothing plugged in"),
    pytest.param(DELL[:100], id="truncated"),
    pytest.param(b"\x01" + DELL[1:], id="wrong header"),
    pytest.param(DELL[:127] + bytes([(DELL[127] + 1) % 256]), id="bad checksum"),
])
def test_invalid_edid_is_no_monitor(data: bytes) -> None:
    assert parse_edid(data) is None


def test_fixture_edids_are_the_blocks_built_here() -> None:
    # Keeps the binary files under tests/fixtures honest: they are exactly these constructions.
    assert (SYSFS / "optiplex-7070/sys/class/drm/card0-DP-1/edid").read_bytes() == DELL
    assert (SYSFS / "thinkpad-t14/sys/class/drm/card0-eDP-1/edid").read_bytes() == AUO_PANEL
