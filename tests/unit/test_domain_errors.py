"""Domain errors: the reference's reason codes and a BadRequest message that names its fields."""
from __future__ import annotations

import pytest

from server.domain import errors
from server.domain.errors import BadRequest, FieldViolation, Violations


@pytest.mark.parametrize(
    ("error_type", "reason"),
    [
        (errors.BadRequest, "BAD_REQUEST"),
        (errors.NoCredits, "NO_CREDITS"),
        (errors.Forbidden, "FORBIDDEN"),
        (errors.NotFound, "NOT_FOUND"),
        (errors.Unauthenticated, "UNAUTHENTICATED"),
    ],
)
def test_error_reason_is_the_upper_case_reference_code(error_type: type[errors.DomainError], reason: str) -> None:
    assert error_type.reason == reason


def test_bad_request_message_names_every_field() -> None:
    error = BadRequest([FieldViolation("quantity", "too big"), FieldViolation("label", "too long")])
    assert error.message.startswith("invalid quantity, label:")
    assert "quantity: too big" in error.message
    assert "label: too long" in error.message


def test_bad_request_str_is_its_message() -> None:
    error = BadRequest.single("cursor", "is not a cursor")
    assert str(error) == error.message == "invalid cursor: cursor: is not a cursor"


def test_single_holds_one_violation() -> None:
    assert BadRequest.single("key", "is required").violations == [FieldViolation("key", "is required")]


def test_domain_error_keeps_its_metadata() -> None:
    error = errors.NoCredits("not enough credits", needed="5", available="2")
    assert (error.message, error.metadata) == ("not enough credits", {"needed": "5", "available": "2"})


def test_violations_without_items_raise_nothing() -> None:
    Violations().raise_if_any()


def test_violations_raise_all_collected_items_in_order() -> None:
    bad = Violations()
    bad.add("app_id", "is required")
    bad.add("limit", "must be between 1 and 200, got 0")
    with pytest.raises(BadRequest) as caught:
        bad.raise_if_any()
    assert [v.field for v in caught.value.violations] == ["app_id", "limit"]
