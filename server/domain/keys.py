"""License keys: `XXXX-XXXX-XXXX-XXXX` from an alphabet with no look-alike characters."""
from __future__ import annotations

import re
import secrets

# 32 symbols, no 0/O or 1/I: 16 symbols x 5 bits = 80 bits from the OS CSPRNG.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GROUPS, GROUP_LEN = 4, 4
_KEY_RE = re.compile(rf"^[{ALPHABET}]{{{GROUP_LEN}}}(?:-[{ALPHABET}]{{{GROUP_LEN}}}){{{GROUPS - 1}}}$")


def generate_key() -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LEN))
    return "-".join(symbols[i : i + GROUP_LEN] for i in range(0, len(symbols), GROUP_LEN))


def normalize_key(raw: str) -> str | None:
    """The canonical form of a key a person may have typed in lower case; None if it cannot be a key."""
    if not raw.isascii():  # str.upper() would turn some non-ASCII letters (ﬀ, ſ) into key symbols
        return None
    candidate = raw.strip().upper()
    return candidate if _KEY_RE.match(candidate) else None
