import uuid

import pytest

from server.domain.caller import ALL_SCOPES, Caller, Scope, parse_scopes
from server.domain.errors import MissingScope


def test_scopes_parse_from_a_comma_separated_list() -> None:
    assert parse_scopes("read, validate") == {Scope.READ, Scope.VALIDATE}


@pytest.mark.parametrize("raw", ["", "admin", "read,admin", " , "])
def test_unknown_or_empty_scopes_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_scopes(raw)


def test_a_caller_without_the_scope_is_refused_naming_it() -> None:
    caller = Caller(uuid.uuid4(), uuid.uuid4(), frozenset({Scope.READ}))
    with pytest.raises(MissingScope) as refused:
        caller.require(Scope.WRITE)
    assert refused.value.metadata == {"requiredScope": "write"}


def test_a_caller_with_every_scope_may_do_everything() -> None:
    caller = Caller(uuid.uuid4(), uuid.uuid4(), ALL_SCOPES)
    for scope in Scope:
        caller.require(scope)
