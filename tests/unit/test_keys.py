"""License keys: format, alphabet, entropy and the normalization of typed keys."""
from __future__ import annotations

import math
import re

import pytest

from server.domain import keys

KEY_SHAPE = re.compile(r"^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$")


def test_alphabet_has_32_distinct_symbols() -> None:
    assert len(keys.ALPHABET) == 32
    assert len(set(keys.ALPHABET)) == 32


@pytest.mark.parametrize("look_alike", ["0", "O", "1", "I"])
def test_alphabet_excludes_look_alike_character(look_alike: str) -> None:
    assert look_alike not in keys.ALPHABET


def test_key_carries_80_bits_of_entropy() -> None:
    symbols = keys.GROUPS * keys.GROUP_LEN
    assert symbols * math.log2(len(keys.ALPHABET)) == 80


def test_generated_key_has_four_groups_of_four() -> None:
    key = keys.generate_key()
    assert KEY_SHAPE.match(key), key
    assert [len(group) for group in key.split("-")] == [4, 4, 4, 4]


def test_generated_key_uses_only_alphabet_symbols() -> None:
    for _ in range(200):
        symbols = keys.generate_key().replace("-", "")
        assert set(symbols) <= set(keys.ALPHABET)


def test_every_symbol_position_of_generated_keys_varies() -> None:
    generated = [keys.generate_key().replace("-", "") for _ in range(200)]
    constant = [i for i in range(16) if len({key[i] for key in generated}) == 1]
    assert constant == []


def test_generated_keys_are_unique() -> None:
    generated = {keys.generate_key() for _ in range(1000)}
    assert len(generated) == 1000


def test_keys_generated_together_are_well_formed_distinct_and_vary_in_every_position() -> None:
    generated = keys.generate_keys(500)
    assert len(set(generated)) == 500
    assert all(KEY_SHAPE.match(key) and set(key.replace("-", "")) <= set(keys.ALPHABET) for key in generated)
    symbols = [key.replace("-", "") for key in generated]
    assert [i for i in range(16) if len({s[i] for s in symbols}) < len(keys.ALPHABET) // 2] == []


def test_generated_key_is_already_normalized() -> None:
    key = keys.generate_key()
    assert keys.normalize_key(key) == key


def test_normalize_upper_cases_a_lower_case_key() -> None:
    assert keys.normalize_key("abcd-efgh-jklm-npqr") == "ABCD-EFGH-JKLM-NPQR"


def test_normalize_strips_surrounding_whitespace() -> None:
    assert keys.normalize_key("  ABCD-EFGH-JKLM-NPQR\n") == "ABCD-EFGH-JKLM-NPQR"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ABCD-EFGH-JKLM",  # three groups
        "ABCD-EFGH-JKLM-NPQR-STUV",  # five groups
        "ABCDEFGHJKLMNPQR",  # no dashes
        "ABCD_EFGH_JKLM_NPQR",  # wrong separator
        "ABCD-EFGH-JKLM-NPQ",  # short last group
        "ABCD-EFGH-JKLM-NPQRS",  # long last group
        "ABCD-EFGH-JKLM-NPQ0",  # zero is not in the alphabet
        "ABCD-EFGH-JKLM-NPQO",  # letter O is not in the alphabet
        "ABCD-EFGH-JKLM-NPQ1",  # one is not in the alphabet
        "ABCD-EFGH-JKLM-NPQI",  # letter I is not in the alphabet
        "ABCD -EFGH-JKLM-NPQR",  # inner whitespace
        "ABCD-EFGH-JKLM-NPQR\nABCD-EFGH-JKLM-NPQR",  # two keys
    ],
)
def test_normalize_rejects_what_cannot_be_a_key(raw: str) -> None:
    assert keys.normalize_key(raw) is None
