"""API tokens: recognisable prefix, unguessable, stored only as a stable hash."""
from __future__ import annotations

from server.domain import tokens


def test_token_starts_with_prefix() -> None:
    assert tokens.generate_token().startswith("lk_")


def test_token_carries_at_least_256_bits() -> None:
    body = tokens.generate_token().removeprefix(tokens.PREFIX)
    assert len(body) >= 43  # 32 random bytes in unpadded url-safe base64


def test_tokens_are_unique() -> None:
    generated = {tokens.generate_token() for _ in range(1000)}
    assert len(generated) == 1000


def test_hash_is_stable_for_the_same_token() -> None:
    token = tokens.generate_token()
    assert tokens.hash_token(token) == tokens.hash_token(token)


def test_hash_differs_between_tokens() -> None:
    assert tokens.hash_token(tokens.generate_token()) != tokens.hash_token(tokens.generate_token())


def test_hash_depends_on_every_character_of_the_token() -> None:
    token = tokens.generate_token()
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert tokens.hash_token(token) != tokens.hash_token(altered)


def test_hash_does_not_contain_the_token() -> None:
    token = tokens.generate_token()
    digest = tokens.hash_token(token)
    assert token.encode() not in digest
    assert digest != token.encode()


def test_hash_is_a_sha256_digest() -> None:
    assert len(tokens.hash_token("lk_example")) == 32
