"""Enrollment tokens and agent secrets: random, shown once, stored only as SHA-256.

Both are 256-bit random values, so a fast hash is enough (no password stretching is needed for
secrets nobody chose), and it keeps per-report authentication cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "ctk_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_agent_id() -> str:
    return secrets.token_hex(16)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def matches(value: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(value), expected_digest)
