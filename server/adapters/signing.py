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
from dataclasses import dataclass, field

# libsodium's Ed25519 (PyNaCl's bindings): 20 µs a signature here against OpenSSL's 33 µs through
# `cryptography`, and ValidateLicense signs every answer. Ed25519 signatures are deterministic, so
# both sign the same bytes alike (the unit tests verify with `cryptography`).
from nacl.bindings import crypto_sign, crypto_sign_BYTES, crypto_sign_seed_keypair

_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    public_bytes: bytes  # the raw 32-byte Ed25519 public key
    _secret: bytes = field(repr=False)  # libsodium's 64-byte form of the private key (seed, public key)

    @classmethod
    def from_seed(cls, key_id: str, seed: bytes) -> SigningKey:
        public, secret = crypto_sign_seed_keypair(seed)
        return cls(key_id, public, secret)

    def sign(self, payload: bytes) -> bytes:
        return crypto_sign(payload, self._secret)[:crypto_sign_BYTES]  # signed message = signature + payload


class Signer:
    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.keys = keys

    def sign(self, payload: bytes) -> tuple[str, bytes]:
        """(key id, signature) for exactly these bytes."""
        active = self.keys[0]
        return active.key_id, active.sign(payload)


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
        keys.append(SigningKey.from_seed(key_id, raw))
    return keys


def new_signing_key_entry(key_id: str | None = None) -> str:
    """A fresh `<key_id>:<base64 seed>` line for SIGNING_KEYS or its file."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"
