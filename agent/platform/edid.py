"""Reading a monitor's identity out of its EDID block (VESA E-EDID 1.3/1.4, base block only).

The vendor is the three-letter PNP id packed into bytes 8-9; the model name and the serial come
from the 18-byte display descriptors, falling back to the product code and the numeric serial that
some monitors fill in instead.
"""

from __future__ import annotations

from agent.platform.base import text_or_none
from agent.protocol import Monitor

HEADER = bytes.fromhex("00ffffffffffff00")
BLOCK_SIZE = 128
DESCRIPTOR_OFFSETS = (54, 72, 90, 108)
TAG_SERIAL = 0xFF
TAG_NAME = 0xFC


def pnp_id(code: int) -> str | None:
    """The three letters of a 16-bit PNP manufacturer code (0x10AC -> "DEL"); None if it is not one.

    Each letter is five bits, 1 = "A"; bit 15 is reserved and zero.
    """
    letters = [(code >> shift) & 0x1F for shift in (10, 5, 0)]
    if code >> 15 or not all(1 <= letter <= 26 for letter in letters):
        return None
    return "".join(chr(ord("A") - 1 + letter) for letter in letters)


def _descriptor_text(descriptor: bytes) -> str | None:
    # Text is at most 13 bytes, ended by a line feed and padded with spaces.
    return text_or_none(descriptor[5:18].split(b"\n", 1)[0].decode("cp437"))


def parse_edid(data: bytes) -> Monitor | None:
    """The monitor an EDID describes; None when the bytes are not a valid EDID base block."""
    if len(data) < BLOCK_SIZE or data[:8] != HEADER or sum(data[:BLOCK_SIZE]) % 256:
        return None
    texts: dict[int, str | None] = {}
    for offset in DESCRIPTOR_OFFSETS:
        descriptor = data[offset:offset + 18]
        # A display descriptor (rather than a timing) starts 00 00 00 <tag>.
        if descriptor[:3] == b"\x00\x00\x00" and descriptor[3] in (TAG_NAME, TAG_SERIAL):
            texts.setdefault(descriptor[3], _descriptor_text(descriptor))
    product_code = int.from_bytes(data[10:12], "little")
    numeric_serial = int.from_bytes(data[12:16], "little")
    return Monitor(
        vendor=pnp_id(int.from_bytes(data[8:10], "big")),
        model=texts.get(TAG_NAME) or f"{product_code:04X}",
        serial=texts.get(TAG_SERIAL) or (str(numeric_serial) if numeric_serial else None),
    )
