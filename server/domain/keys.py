"""License keys: `XXXX-XXXX-XXXX-XXXX` from an alphabet with no look-alike characters."""
from __future__ import annotations

import re
import secrets

# 32 symbols, no 0/O or 1/I: 16 symbols x 5 bits = 80 bits from the OS CSPRNG.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GROUPS, GROUP_LEN = 4, 4
_KEY_RE = re.compile(rf"^[{ALPHABET}]{{{GROUP_LEN}}}(?:-[{ALPHABET}]{{{GROUP_LEN}}}){{{GROUPS - 1}}}$")


_SYMBOLS = GROUPS * GROUP_LEN
_KEY_BYTES = _SYMBOLS * 5 // 8  # 10: each symbol is 5 bits (32 symbols)


def generate_key() -> str:
    return generate_keys(1)[0]


def generate_keys(n: int) -> list[str]:
    """`n` keys from one read of the OS CSPRNG (a system call per symbol was the cost of a bulk create)."""
    entropy = secrets.token_bytes(_KEY_BYTES * n)
    return [_format(int.from_bytes(entropy[i : i + _KEY_BYTES], "big")) for i in range(0, len(entropy), _KEY_BYTES)]


def _format(bits: int) -> str:
    symbols = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(_SYMBOLS))
    return "-".join(symbols[i : i + GROUP_LEN] for i in range(0, _SYMBOLS, GROUP_LEN))


def normalize_key(raw: str) -> str | None:
    """The canonical form of a key a person may have typed in lower case; None if it cannot be a key."""
    if not raw.isascii():  # str.upper() would turn some non-ASCII letters (ﬀ, ſ) into key symbols
        return None
    candidate = raw.strip().upper()
    return candidate if _KEY_RE.match(candidate) else None
