"""Who is calling: the account a bearer token names, and what the token may do."""
from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from .errors import MissingScope


class Scope(str, enum.Enum):
    READ = "read"  # ListLicenses, GetLicense
    WRITE = "write"  # CreateLicenses, UpdateLicense, DeleteLicense
    VALIDATE = "validate"  # the ValidationService


ALL_SCOPES = frozenset(Scope)


def parse_scopes(raw: str) -> frozenset[Scope]:
    """`read,write` -> {READ, WRITE}; raises ValueError naming an unknown scope."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - {s.value for s in Scope})
    if unknown or not names:
        raise ValueError(f"scopes are a comma-separated subset of {', '.join(s.value for s in Scope)}; got {raw!r}")
    return frozenset(Scope(name) for name in names)


@dataclass(frozen=True)
class Caller:
    account_id: uuid.UUID
    token_id: uuid.UUID  # recorded with every change the caller makes: the event stream is an audit log
    scopes: frozenset[Scope]

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise MissingScope(f"this API token lacks the '{scope.value}' scope", requiredScope=scope.value)
