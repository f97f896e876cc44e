"""The seat rules of server/domain/validation.py and the signing-key configuration of
server/adapters/signing.py: pure functions, no I/O."""
from __future__ import annotations

import base64
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from server.adapters.signing import Signer, new_signing_key_entry, parse_signing_keys
from server.domain import limits
from server.domain.errors import BadRequest
from server.domain.licenses import EventType, HwidBinding, License
from server.domain.validation import (
    HWID_MAX_CHARS,
    LAST_SEEN_RESOLUTION,
    NONCE_MAX_CHARS,
    Check,
    Code,
    Mode,
    Verdict,
    bind,
    judge,
    parse_check,
    seats,
)

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
APP = str(uuid.UUID(int=1))
OTHER_APP = str(uuid.UUID(int=2))
KEY = "ABCD-EFGH-JKLM-NPQR"
HWID = "device-a"


def license_(*bound: str, seats_: int = 1, unlimited: bool = False, revoked: bool = False,
             expires_at: datetime | None = None, last_seen: datetime = NOW) -> License:
    """A license of APP with `bound` devices, each last seen at `last_seen`."""
    return License(
        key=KEY, app_id=APP, revoked=revoked, expires_at=expires_at, max_hwid_slots=0 if unlimited else seats_,
        unlimited_hwid_slots=unlimited, label="", created_at=NOW - timedelta(days=1),
        updated_at=NOW - timedelta(days=1), version=1 + len(bound),
        hwids=tuple(HwidBinding(h, NOW - timedelta(hours=1), last_seen) for h in bound),
    )


def check(hwid: str = HWID, app_id: str = APP) -> Check:
    return Check(app_id=app_id, key=KEY, hwid=hwid, nonce="")


def seed(byte: int = 7) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# judge(): the code


@pytest.mark.parametrize("mode", list(Mode))
def test_judge_unknown_key_is_not_found(mode: Mode) -> None:
    assert judge(None, check(), mode, NOW) == Verdict(Code.NOT_FOUND)


@pytest.mark.parametrize("mode", list(Mode))
def test_judge_key_of_another_app_is_app_mismatch(mode: Mode) -> None:
    assert judge(license_(), check(app_id=OTHER_APP), mode, NOW) == Verdict(Code.APP_MISMATCH)


def test_judge_app_mismatch_comes_before_revoked_and_expired() -> None:
    lic = license_(revoked=True, expires_at=NOW - timedelta(days=1))
    assert judge(lic, check(app_id=OTHER_APP), Mode.VALIDATE, NOW).code is Code.APP_MISMATCH


@pytest.mark.parametrize("mode", list(Mode))
def test_judge_revoked_license_is_revoked_even_for_a_bound_device(mode: Mode) -> None:
    assert judge(license_(HWID, revoked=True), check(), mode, NOW) == Verdict(Code.REVOKED)


def test_judge_revoked_comes_before_expired() -> None:
    lic = license_(revoked=True, expires_at=NOW - timedelta(days=1))
    assert judge(lic, check(), Mode.VALIDATE, NOW).code is Code.REVOKED


@pytest.mark.parametrize("mode", list(Mode))
def test_judge_expired_license_is_expired_even_for_a_bound_device(mode: Mode) -> None:
    lic = license_(HWID, expires_at=NOW - timedelta(seconds=1))
    assert judge(lic, check(), mode, NOW) == Verdict(Code.EXPIRED)


def test_judge_license_expiring_this_instant_is_expired() -> None:
    assert judge(license_(expires_at=NOW), check(), Mode.VALIDATE, NOW).code is Code.EXPIRED


def test_judge_license_expiring_a_microsecond_later_is_valid() -> None:
    lic = license_(expires_at=NOW + timedelta(microseconds=1))
    assert judge(lic, check(), Mode.VALIDATE, NOW).code is Code.VALID


def test_judge_expired_license_binds_no_new_device() -> None:
    lic = license_(expires_at=NOW - timedelta(seconds=1), seats_=3)
    assert judge(lic, check(), Mode.VALIDATE, NOW) == Verdict(Code.EXPIRED)


# judge(): binding and touching


def test_judge_new_device_with_a_free_seat_binds_on_validate() -> None:
    assert judge(license_("other", seats_=2), check(), Mode.VALIDATE, NOW) == Verdict(Code.VALID, bind=True)


def test_judge_new_device_with_no_free_seat_is_hwid_mismatch_on_validate() -> None:
    assert judge(license_("other", seats_=1), check(), Mode.VALIDATE, NOW) == Verdict(Code.HWID_MISMATCH)


def test_judge_new_device_is_hwid_mismatch_on_heartbeat_even_with_a_free_seat() -> None:
    assert judge(license_(seats_=5), check(), Mode.HEARTBEAT, NOW) == Verdict(Code.HWID_MISMATCH)


@pytest.mark.parametrize("mode", list(Mode))
def test_judge_bound_device_seen_recently_is_valid_without_a_write(mode: Mode) -> None:
    lic = license_(HWID, last_seen=NOW - LAST_SEEN_RESOLUTION + timedelta(seconds=1))
    assert judge(lic, check(), mode, NOW) == Verdict(Code.VALID)


@pytest.mark.parametrize("mode", list(Mode))
def test_judge_bound_device_seen_a_minute_ago_is_touched(mode: Mode) -> None:
    lic = license_(HWID, last_seen=NOW - LAST_SEEN_RESOLUTION)
    assert judge(lic, check(), mode, NOW) == Verdict(Code.VALID, touch=True)


def test_judge_bound_device_on_a_full_license_is_valid() -> None:
    lic = license_("other", HWID, seats_=2)
    assert judge(lic, check(), Mode.VALIDATE, NOW) == Verdict(Code.VALID)


def test_judge_bound_device_over_a_lowered_limit_stays_valid() -> None:
    lic = license_("a", "b", HWID, seats_=1)
    assert judge(lic, check(), Mode.HEARTBEAT, NOW).code is Code.VALID


def test_last_seen_resolution_is_one_minute() -> None:
    assert LAST_SEEN_RESOLUTION == timedelta(minutes=1)


@pytest.mark.parametrize("mode", list(Mode))
def test_judge_new_device_on_an_unlimited_license_is_valid_and_recorded(mode: Mode) -> None:
    lic = license_(*(f"d{i}" for i in range(50)), unlimited=True)
    assert judge(lic, check(), mode, NOW) == Verdict(Code.VALID, bind=True)


@pytest.mark.parametrize("mode", list(Mode))
def test_judge_new_device_on_an_unlimited_license_with_all_devices_recorded_is_valid_not_recorded(mode: Mode) -> None:
    lic = license_(*(f"d{i}" for i in range(limits.UNLIMITED_RECORDED_DEVICES)), unlimited=True)
    assert judge(lic, check(), mode, NOW) == Verdict(Code.VALID, bind=False)


def test_judge_bound_device_on_an_unlimited_license_is_not_bound_again() -> None:
    lic = license_(HWID, unlimited=True)
    assert judge(lic, check(), Mode.VALIDATE, NOW) == Verdict(Code.VALID)


def test_judge_matches_hwids_exactly() -> None:
    lic = license_(HWID.upper(), seats_=1)
    assert judge(lic, check(HWID), Mode.VALIDATE, NOW).code is Code.HWID_MISMATCH


@pytest.mark.parametrize("code", list(Code))
def test_verdict_is_valid_exactly_for_valid(code: Code) -> None:
    assert Verdict(code).valid is (code is Code.VALID)


# seats()


def test_seats_of_an_unknown_key_are_zero() -> None:
    assert seats(None) == (0, 0)


def test_seats_count_bound_devices_against_the_limit() -> None:
    assert seats(license_("a", "b", seats_=3)) == (2, 3)


def test_seats_of_an_unlimited_license_allow_zero() -> None:
    assert seats(license_(*(f"d{i}" for i in range(20)), unlimited=True)) == (20, 0)


# bind()


def test_bind_appends_the_device_seen_now() -> None:
    changed = bind(license_("a", seats_=2), HWID, NOW).license
    assert [b.hwid for b in changed.hwids] == ["a", HWID]
    assert changed.hwids[-1] == HwidBinding(HWID, NOW, NOW)


def test_bind_keeps_the_earlier_bindings() -> None:
    before = license_("a", "b", seats_=3)
    assert bind(before, HWID, NOW).license.hwids[:2] == before.hwids


def test_bind_increments_the_version_and_stamps_the_change() -> None:
    before = license_("a", seats_=2)
    changed = bind(before, HWID, NOW).license
    assert (changed.version, changed.updated_at) == (before.version + 1, NOW)


def test_bind_emits_hwid_bound() -> None:
    assert bind(license_(seats_=1), HWID, NOW).event is EventType.HWID_BOUND


def test_bind_changes_nothing_else() -> None:
    before = license_("a", seats_=2, expires_at=NOW + timedelta(days=3))
    changed = bind(before, HWID, NOW).license
    assert replace(changed, hwids=before.hwids, version=before.version, updated_at=before.updated_at) == before


def test_bind_leaves_the_original_license_alone() -> None:
    before = license_("a", seats_=2)
    bind(before, HWID, NOW)
    assert [b.hwid for b in before.hwids] == ["a"] and before.version == 2


# parse_check()


def parse(**overrides: str) -> Check:
    fields = {"app_id": APP, "key": KEY, "hwid": HWID, "nonce": "", **overrides}
    return parse_check(**fields)


def violations(**overrides: str) -> dict[str, str]:
    with pytest.raises(BadRequest) as caught:
        parse(**overrides)
    return {v.field: v.description for v in caught.value.violations}


def test_parse_check_accepts_a_good_request() -> None:
    assert parse(nonce="n") == Check(app_id=APP, key=KEY, hwid=HWID, nonce="n")


def test_parse_check_normalizes_the_key() -> None:
    assert parse(key=f"  {KEY.lower()}\t").key == KEY


def test_parse_check_normalizes_the_app_id() -> None:
    assert parse(app_id=APP.upper()).app_id == APP


@pytest.mark.parametrize("hwid", ["x", "h" * HWID_MAX_CHARS, "a b", "ü-device"], ids=["1", "256", "space", "unicode"])
def test_parse_check_accepts_hwids_within_limits(hwid: str) -> None:
    assert parse(hwid=hwid).hwid == hwid


@pytest.mark.parametrize("hwid", ["", "h" * (HWID_MAX_CHARS + 1), "a\nb", "a\tb", "a\x00b", "a\x7fb"],
                         ids=["empty", "257", "newline", "tab", "nul", "del"])
def test_parse_check_rejects_bad_hwids(hwid: str) -> None:
    assert list(violations(hwid=hwid)) == ["hwid"]


def test_hwid_limit_is_256_characters() -> None:
    assert HWID_MAX_CHARS == 256


@pytest.mark.parametrize("nonce", ["", "n" * NONCE_MAX_CHARS], ids=["empty", "128"])
def test_parse_check_accepts_nonces_within_limits(nonce: str) -> None:
    assert parse(nonce=nonce).nonce == nonce


@pytest.mark.parametrize("nonce", ["n" * (NONCE_MAX_CHARS + 1), "a\nb"], ids=["129", "newline"])
def test_parse_check_rejects_bad_nonces(nonce: str) -> None:
    assert list(violations(nonce=nonce)) == ["nonce"]


def test_nonce_limit_is_128_characters() -> None:
    assert NONCE_MAX_CHARS == 128


@pytest.mark.parametrize(
    "key", ["", "ABCD-EFGH-JKLM", "ABCD-EFGH-JKLM-NPQ0", "ABCDEFGHJKLMNPQR", "ABCD-EFGH-JKLM-NPQR-"],
    ids=["empty", "short", "look-alike", "no-dashes", "trailing-dash"],
)
def test_parse_check_rejects_malformed_keys(key: str) -> None:
    assert list(violations(key=key)) == ["key"]


def test_parse_check_says_an_empty_key_is_required() -> None:
    assert violations(key="")["key"] == "is required"


@pytest.mark.parametrize("app_id", ["", "not-a-uuid", "1234"], ids=["empty", "word", "digits"])
def test_parse_check_rejects_app_ids_that_are_not_uuids(app_id: str) -> None:
    assert list(violations(app_id=app_id)) == ["app_id"]


def test_parse_check_reports_every_bad_field_at_once() -> None:
    bad = violations(app_id="x", key="y", hwid="", nonce="n" * 200)
    assert sorted(bad) == ["app_id", "hwid", "key", "nonce"]


# parse_signing_keys()


def test_parse_signing_keys_reads_one_entry() -> None:
    (key,) = parse_signing_keys(f"k1:{seed(7)}")
    assert key.key_id == "k1"
    assert key.public_bytes == raw_public(Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32))


def test_parse_signing_keys_public_bytes_are_32_raw_bytes() -> None:
    (key,) = parse_signing_keys(f"k1:{seed()}")
    assert len(key.public_bytes) == 32
    Ed25519PublicKey.from_public_bytes(key.public_bytes)


@pytest.mark.parametrize(
    "separator", [",", "\n", " , ", "\n\n"], ids=["comma", "newline", "spaced-comma", "blank-line"]
)
def test_parse_signing_keys_reads_several_entries_in_order(separator: str) -> None:
    keys = parse_signing_keys(separator.join([f"new:{seed(1)}", f"old:{seed(2)}"]) + "\n")
    assert [k.key_id for k in keys] == ["new", "old"]


@pytest.mark.parametrize("key_id", ["k.1", "k-1", "k_1", "K" * 64], ids=["dot", "dash", "underscore", "64-chars"])
def test_parse_signing_keys_accepts_key_ids_of_the_allowed_characters(key_id: str) -> None:
    assert parse_signing_keys(f"{key_id}:{seed()}")[0].key_id == key_id


def test_parse_signing_keys_of_nothing_is_no_keys() -> None:
    assert parse_signing_keys(" \n , ") == []


def test_parse_signing_keys_rejects_a_seed_that_is_not_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        parse_signing_keys("k1:not*base64!")


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_parse_signing_keys_rejects_a_seed_of_the_wrong_length(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        parse_signing_keys(f"k1:{base64.b64encode(bytes(length)).decode()}")


@pytest.mark.parametrize("entry", [f":{seed()}", f"k 1:{seed()}", f"k/1:{seed()}", f"{'K' * 65}:{seed()}", seed()],
                         ids=["empty-id", "space", "slash", "65-chars", "no-colon"])
def test_parse_signing_keys_rejects_bad_key_ids(entry: str) -> None:
    with pytest.raises(ValueError, match="key_id"):
        parse_signing_keys(entry)


def test_parse_signing_keys_rejects_the_whole_spec_for_one_bad_entry() -> None:
    with pytest.raises(ValueError):
        parse_signing_keys(f"good:{seed(1)},bad:{seed(2)[:-4]}")


def test_the_first_key_signs() -> None:
    keys = parse_signing_keys(f"new:{seed(1)}\nold:{seed(2)}")
    key_id, signature = Signer(keys).sign(b"receipt")
    assert key_id == "new"
    Ed25519PublicKey.from_public_bytes(keys[0].public_bytes).verify(signature, b"receipt")


def test_a_signer_needs_a_key() -> None:
    with pytest.raises(ValueError):
        Signer([])


def test_a_new_signing_key_entry_parses() -> None:
    (key,) = parse_signing_keys(new_signing_key_entry("fresh"))
    assert key.key_id == "fresh"
