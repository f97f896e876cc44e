"""Opaque keyset cursors: the position after which the next page starts, bound to one app.

A cursor never grants access (AIP-158): the app it names is checked against the request's.
"""
from __future__ import annotations

import base64
import binascii
import uuid

from .errors import BadRequest

_VERSION = "1"
_MAX_POSITION = 2**63 - 1  # row ids are PostgreSQL bigints


def encode_cursor(app_id: uuid.UUID, last_id: int) -> str:
    raw = f"{_VERSION}:{app_id}:{last_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, app_id: uuid.UUID) -> int:
    """The position encoded in `cursor`; 0 (before the first row) for an empty cursor."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, app, last_id = raw.split(":")
        position = int(last_id)
        valid = version == _VERSION and uuid.UUID(app) == app_id and 0 < position <= _MAX_POSITION
    except (ValueError, binascii.Error, UnicodeDecodeError):
        valid = False
    if not valid:
        raise BadRequest.single("cursor", "is not a cursor of this app's listing")
    return position
