"""API tokens: shown once, stored only as a hash."""
from __future__ import annotations

import hashlib
import secrets

PREFIX = "lk_"  # makes a leaked token easy to recognise in logs and secret scanners


def generate_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    # 256 random bits need no slow password hash: a SHA-256 preimage search is hopeless.
    return hashlib.sha256(token.encode()).digest()
