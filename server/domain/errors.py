"""The ways a request can fail, named after the reference's error codes.

The gRPC layer maps each to a status code in one place (server/api/errors.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    field: str  # proto field name, e.g. "quantity"
    description: str


class DomainError(Exception):
    """Base of every expected failure; `reason` is the reference's code in upper case."""

    reason = "INTERNAL"

    def __init__(self, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata


class BadRequest(DomainError):
    reason = "BAD_REQUEST"

    def __init__(self, violations: list[FieldViolation]) -> None:
        names = ", ".join(v.field for v in violations)
        details = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid {names}: {details}")
        self.violations = violations

    @classmethod
    def single(cls, field_name: str, description: str) -> BadRequest:
        return cls([FieldViolation(field_name, description)])


class NoCredits(DomainError):
    reason = "NO_CREDITS"


class Forbidden(DomainError):
    reason = "FORBIDDEN"


class MissingScope(DomainError):
    reason = "MISSING_SCOPE"


class NotFound(DomainError):
    reason = "NOT_FOUND"


class Unauthenticated(DomainError):
    reason = "UNAUTHENTICATED"


@dataclass
class Violations:
    """Collects every bad field of a request so the caller learns them all at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_name: str, description: str) -> None:
        self.items.append(FieldViolation(field_name, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise BadRequest(self.items)
