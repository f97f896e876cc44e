"""Ed25519 signing keys for validation answers, from configuration.

Format (SIGNING_KEYS, or one per line in SIGNING_KEYS_FILE): `<key_id>:<base64 of the 32-byte
private seed>`, separated by commas or newlines. The first key signs new answers; all of them are
published, so clients keep verifying answers signed before a rotation.
"""
from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private: Ed25519PrivateKey

    @property
    def public_bytes(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class Signer:
    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.keys = keys

    def sign(self, payload: bytes) -> tuple[str, bytes]:
        """(key id, signature) for exactly these bytes."""
        active = self.keys[0]
        return active.key_id, active.private.sign(payload)


def parse_signing_keys(spec: str) -> list[SigningKey]:
    keys = []
    for entry in filter(None, (part.strip() for part in re.split(r"[,\n]", spec))):
        key_id, sep, seed = entry.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ValueError(f"signing key entries look like <key_id>:<base64 seed>; got {key_id[:64]!r}")
        try:
            raw = base64.b64decode(seed, validate=True)
        except binascii.Error as error:
            raise ValueError(f"signing key {key_id}: seed is not base64") from error
        if len(raw) != 32:
            raise ValueError(f"signing key {key_id}: seed must be 32 bytes, got {len(raw)}")
        keys.append(SigningKey(key_id, Ed25519PrivateKey.from_private_bytes(raw)))
    return keys


def new_signing_key_entry(key_id: str | None = None) -> str:
    """A fresh `<key_id>:<base64 seed>` line for SIGNING_KEYS or its file."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"
