"""Scale-out on one machine: three `licensing serve` processes (each on its own port) and two `licensing
relay` processes on one PostgreSQL database and one NATS JetStream stream, driven by a client that
sends each call to the next of the three servers in turn.

The scenario runs once for the module, everything at the same time: a storm of revoke/activate/extend
updates racing on 20 licenses, a credit race (80 CreateLicenses asking for 240 credits of an account
that has 200) and a seat race (30 devices for a 3-seat license). Midway through the storm the active
relay is SIGKILLed, inside a batch if it can be caught in one, and the standby must take over. Each
test checks one outcome: no over-issued credits or seats, contiguous versions, every committed event
in the stream exactly once and in version order per license, the same signing keys on every server.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from licensing.v1 import licenses_pb2 as lpb
from licensing.v1 import licenses_pb2_grpc, validation_pb2_grpc
from licensing.v1 import validation_pb2 as vpb
from server.adapters.signing import new_signing_key_entry, parse_signing_keys
from server.outbox.messages import OutboxRow
from tests.conftest import EventStream
from tests.events import Received
from tests.relay.harness import (
    RelayProcess,
    backlog,
    outbox_rows,
    spawn_relay,
    stream_events,
    wait_for_batch_in_flight,
    wait_until,
)
from tests.server_process import running_server
from tests.support import Account, Stub, Validation, admin, from_now, new_account, new_hwid, when

SERVERS = 3
DB_POOL_SIZE = 3
CALL_TIMEOUT = 30.0

CREDITS = 200
QUANTITIES = [1 + i % 5 for i in range(80)]  # 240 credits asked for, 200 to give
SEATS, DEVICES = 3, 30
STORM_LICENSES, STORM_THREADS = 20, 9
UPDATES_BEFORE_KILL, UPDATES_AFTER_KILL = 200, 200
STORM_ACTIONS = (lpb.LICENSE_ACTION_REVOKE, lpb.LICENSE_ACTION_ACTIVATE, lpb.LICENSE_ACTION_EXTEND)

TAKEOVER_LIMIT_SECONDS = 5.0
DRAIN_LIMIT_SECONDS = 15.0
ACTIVE_LOG_LINE = "this process is now the active outbox relay"


# The client


class RoundRobin:
    """One channel per server; every call goes to the next server in turn and says which it was."""

    def __init__(self, addresses: Sequence[str]) -> None:
        self._channels = [grpc.insecure_channel(address) for address in addresses]
        self._licenses = [licenses_pb2_grpc.LicenseServiceStub(ch) for ch in self._channels]
        self._validation = [validation_pb2_grpc.ValidationServiceStub(ch) for ch in self._channels]
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def _next(self) -> int:
        with self._lock:
            return next(self._turn) % len(self._channels)

    def licenses(self) -> tuple[int, Stub]:
        server = self._next()
        return server, self._licenses[server]

    def validation(self) -> tuple[int, Validation]:
        server = self._next()
        return server, self._validation[server]

    def validation_on(self, server: int) -> Validation:
        return self._validation[server]

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


@dataclass(frozen=True)
class Failure:
    """A failed call: the server that answered, its status code and ErrorInfo reason."""

    server: int
    code: grpc.StatusCode
    reason: str
    message: str


def summary(failures: Sequence[Failure]) -> str:
    """How many calls failed, by server and status, and the first message of each kind."""
    kinds: dict[tuple[int, str, str], list[str]] = defaultdict(list)
    for f in failures:
        kinds[(f.server, f.code.name, f.reason)].append(f.message)
    return "; ".join(f"server {s}: {n} x {len(m)} {r} ({m[0]})" for (s, n, r), m in sorted(kinds.items()))


def failure(server: int, error: grpc.RpcError) -> Failure:
    reason = ""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    return Failure(server, error.code(), reason, error.details())  # type: ignore[attr-defined]


@contextlib.contextmanager
def database_env(database_url: str) -> Iterator[None]:
    """`tests.support.admin` runs the admin CLI in-process against os.environ["DATABASE_URL"]: point it at
    this module's database for the block, and put back whatever was there (the e2e session's)."""
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = database_url
    try:
        yield
    finally:
        if before is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = before


# What the scenario observed


@dataclass
class CreditRace:
    issued: list[tuple[int, int, list[str]]] = field(default_factory=list)  # (server, quantity, keys)
    refused: list[tuple[int, Failure]] = field(default_factory=list)  # (quantity, failure)
    credits_left: int | None = None
    listed: list[str] = field(default_factory=list)  # ListLicenses, each page from the next server


@dataclass
class SeatRace:
    key: str
    raced: list[tuple[int, str, vpb.ValidationResult]] = field(default_factory=list)  # (server, hwid, result)
    again: list[tuple[int, str, vpb.ValidationResult]] = field(default_factory=list)  # every device once more
    failures: list[Failure] = field(default_factory=list)
    bound: list[str] = field(default_factory=list)  # GetLicense's hwids at the end


@dataclass(frozen=True)
class Update:
    server: int
    key: str
    action: int
    requested_expiry: float | None  # seconds since the epoch asked for by an EXTEND
    license: lpb.License  # as the answer showed it


@dataclass
class Storm:
    """Concurrent revoke/activate/extend calls on a few licenses from threads, until stopped."""

    client: RoundRobin
    account: Account
    keys: list[str]
    updates: list[Update] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    crashes: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, threads: int) -> None:
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=CALL_TIMEOUT + 5)

    def count(self) -> int:
        with self.lock:
            return len(self.updates) + len(self.failures)

    def _run(self, index: int) -> None:
        rng = random.Random(1000 + index)
        try:
            while not self.stopping.is_set():
                key, action = rng.choice(self.keys), rng.choice(STORM_ACTIONS)
                expires = from_now(days=rng.uniform(30, 3000)) if action == lpb.LICENSE_ACTION_EXTEND else None
                request = lpb.UpdateLicenseRequest(key=key, action=action, expires_at=expires)  # type: ignore[arg-type]
                server, stub = self.client.licenses()
                try:
                    answer = stub.UpdateLicense(request, metadata=self.account.auth, timeout=CALL_TIMEOUT).license
                except grpc.RpcError as error:
                    with self.lock:
                        self.failures.append(failure(server, error))
                    continue
                requested = when(expires).timestamp() if expires is not None else None
                with self.lock:
                    self.updates.append(Update(server, key, action, requested, answer))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            with self.lock:
                self.crashes.append(error)


@dataclass
class Relays:
    standby_idle_before: bool = False
    killed_first: bool = False  # the relay killed was the one started (and active) first
    killed_mid_batch: bool = False  # it held claimed, unmarked rows when it died
    takeover_seconds: float | None = None
    standby_log: str = ""
    standby_published: float | None = None  # licensing_outbox_published_total of the standby
    standby_duplicates: float | None = None  # re-publishes of what the killed relay had published, unmarked


@dataclass
class Scenario:
    signing_entry: str
    keys_by_server: list[list[tuple[str, bytes]]]
    credits: CreditRace
    seats: SeatRace
    storm: Storm
    final: dict[str, lpb.License]  # GetLicense of each storm license at the end
    relays: Relays
    drained_seconds: float | None
    backlog_after: int
    outbox: list[OutboxRow]
    received: list[Received]


# The scenario


def race_for_credits(client: RoundRobin, account: Account) -> list[tuple[int, int, grpc.Future]]:
    """Fires every CreateLicenses of the credit race without waiting for any answer."""
    fired = []
    for quantity in QUANTITIES:
        server, stub = client.licenses()
        request = lpb.CreateLicensesRequest(app_id=account.app_id, quantity=quantity, request_id=str(uuid.uuid4()))
        fired.append((server, quantity, stub.CreateLicenses.future(request, metadata=account.auth, timeout=CALL_TIMEOUT)))
    return fired


def race_for_seats(client: RoundRobin, account: Account, key: str,
                   hwids: Sequence[str]) -> list[tuple[int, str, grpc.Future]]:
    fired = []
    for hwid in hwids:
        server, stub = client.validation()
        request = vpb.ValidateLicenseRequest(app_id=account.app_id, key=key, hwid=hwid, nonce=uuid.uuid4().hex)
        fired.append((server, hwid, stub.ValidateLicense.future(request, metadata=account.auth, timeout=CALL_TIMEOUT)))
    return fired


def collect_validations(fired: list[tuple[int, str, grpc.Future]], race: SeatRace,
                        into: list[tuple[int, str, vpb.ValidationResult]]) -> None:
    for server, hwid, future in fired:
        try:
            into.append((server, hwid, future.result().result))
        except grpc.RpcError as error:
            race.failures.append(failure(server, error))


def list_all(client: RoundRobin, account: Account) -> list[str]:
    """Every license of the app, 7 to a page, each page (and its cursor) from the next server."""
    keys: list[str] = []
    cursor = ""
    while True:
        _, stub = client.licenses()
        page = stub.ListLicenses(lpb.ListLicensesRequest(app_id=account.app_id, limit=7, cursor=cursor),
                                 metadata=account.auth, timeout=CALL_TIMEOUT)
        keys.extend(lic.key for lic in page.licenses)
        if not page.cursor:
            return keys
        cursor = page.cursor


def kill_active_relay_midway(database_url: str, stream: EventStream, first: RelayProcess, standby: RelayProcess,
                             relays: Relays) -> None:
    relays.killed_mid_batch = wait_for_batch_in_flight(database_url, stream, timeout=3)
    active = [relay for relay in (first, standby) if relay.is_active()]
    relays.killed_first = active == [first]
    first.kill()
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < 2 * TAKEOVER_LIMIT_SECONDS:
        if standby.is_active():
            relays.takeover_seconds = time.monotonic() - killed_at
            break
        time.sleep(0.02)


@pytest.fixture(scope="module")
def scale_out(fresh_database: Callable[[], str], new_event_stream: Callable[[], EventStream],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    database_url, stream = fresh_database(), new_event_stream()
    logs: Path = tmp_path_factory.mktemp("cluster")
    began = time.monotonic()

    def phase(name: str) -> None:  # where the time goes: in the captured output of a failing test, or with -s
        print(f"scale-out: {time.monotonic() - began:6.2f}s {name}")  # (the admin CLI reconfigures logging)

    signing_entry = new_signing_key_entry(f"cluster-{uuid.uuid4().hex[:8]}")
    # DB_POOL_SIZE: each server opens up to 3x that many connections (the hot-read pool, the write pool
    # and as many overflow); three servers at the default 10 would take 90 of PostgreSQL's default 100.
    server_env = {"DATABASE_URL": database_url, "GRPC_WORKERS": "1", "RELAY_ENABLED": "false",
                  "SIGNING_KEYS": signing_entry, "DB_POOL_SIZE": str(DB_POOL_SIZE)}
    relays = Relays()
    started: list[RelayProcess] = []
    with contextlib.ExitStack() as servers:
        try:
            started.append(first := spawn_relay(database_url, stream, logs / "relay-1.log"))
            wait_until(first.is_active, 10, "the first relay is active")
            started.append(standby := spawn_relay(database_url, stream, logs / "relay-2.log"))
            time.sleep(0.6)  # a few of its poll intervals
            relays.standby_idle_before = standby.metric("licensing_outbox_relay_active") == 0.0

            phase("relays started")
            addresses = [servers.enter_context(running_server(server_env)) for _ in range(SERVERS)]
            client = RoundRobin(addresses)
            servers.callback(client.close)
            with database_env(database_url):
                spender, owner = new_account(credits=CREDITS), new_account(credits=1000)

            phase("servers started, accounts made")
            keys_by_server = [
                [(k.key_id, k.public_key) for k in client.validation_on(i).GetSigningKeys(
                    vpb.GetSigningKeysRequest(), metadata=owner.auth, timeout=CALL_TIMEOUT).keys]
                for i in range(SERVERS)
            ]
            _, stub = client.licenses()
            storm_keys = [lic.key for lic in stub.CreateLicenses(
                lpb.CreateLicensesRequest(app_id=owner.app_id, quantity=STORM_LICENSES),
                metadata=owner.auth, timeout=CALL_TIMEOUT).licenses]
            _, stub = client.licenses()
            seats = SeatRace(stub.CreateLicenses(
                lpb.CreateLicensesRequest(app_id=owner.app_id, max_hwid_slots=SEATS),
                metadata=owner.auth, timeout=CALL_TIMEOUT).licenses[0].key)

            phase("licenses made")
            storm = Storm(client, owner, storm_keys)
            storm.start(STORM_THREADS)
            try:
                # The two races, all calls in flight at once, while the storm runs.
                hwids = [new_hwid() for _ in range(DEVICES)]
                creates = race_for_credits(client, spender)
                validations = race_for_seats(client, owner, seats.key, hwids)
                credits = CreditRace()
                for server, quantity, future in creates:
                    try:
                        credits.issued.append((server, quantity, [lic.key for lic in future.result().licenses]))
                    except grpc.RpcError as error:
                        credits.refused.append((quantity, failure(server, error)))
                collect_validations(validations, seats, seats.raced)
                collect_validations(race_for_seats(client, owner, seats.key, hwids), seats, seats.again)

                phase("credit and seat races done")
                wait_until(lambda: storm.count() >= UPDATES_BEFORE_KILL, 20, "the storm made some updates")
                updates_at_kill = storm.count()
                kill_active_relay_midway(database_url, stream, first, standby, relays)
                phase("relay killed")
                wait_until(lambda: storm.count() >= updates_at_kill + UPDATES_AFTER_KILL, 20,
                           "the storm made more updates after the kill")
            finally:
                storm.stop()

            phase("storm stopped")
            credits.listed = list_all(client, spender)
            with database_env(database_url):
                credits.credits_left = int(admin("show-account", "--account", spender.account_id)["credits"])
            final = {}
            for key in storm_keys:
                _, stub = client.licenses()
                final[key] = stub.GetLicense(lpb.GetLicenseRequest(key=key), metadata=owner.auth,
                                             timeout=CALL_TIMEOUT).license
            _, stub = client.licenses()
            seats.bound = [b.hwid for b in stub.GetLicense(
                lpb.GetLicenseRequest(key=seats.key), metadata=owner.auth, timeout=CALL_TIMEOUT).license.hwids]

            phase("final state read")
            drained_seconds: float | None
            try:
                drained_seconds = wait_until(lambda: backlog(database_url) == 0, DRAIN_LIMIT_SECONDS,
                                             "the outbox is drained", interval=0.1)
            except AssertionError:
                drained_seconds = None
            phase("outbox drained")
            rows = outbox_rows(database_url)
            received = stream_events(stream, len(rows))
            phase("stream read")
            relays.standby_log = standby.log()
            relays.standby_published = standby.metric("licensing_outbox_published_total")
            relays.standby_duplicates = standby.metric("licensing_outbox_duplicates_total")
            phase(f"{len(rows)} events; the standby published {relays.standby_published}, "
                  f"{relays.standby_duplicates} of them already in the stream")

            yield Scenario(signing_entry, keys_by_server, credits, seats, storm, final, relays,
                           drained_seconds, backlog(database_url), rows, received)
        finally:
            for relay in started:
                relay.stop()


# The client and the servers


def test_the_client_spreads_its_calls_over_all_three_servers(scale_out: Scenario) -> None:
    per_server = Counter(u.server for u in scale_out.storm.updates)
    assert sorted(per_server) == list(range(SERVERS)), per_server
    assert min(per_server.values()) >= len(scale_out.storm.updates) // (2 * SERVERS), per_server
    assert {server for server, _, _ in scale_out.credits.issued} == set(range(SERVERS))
    assert {server for server, _, _ in scale_out.seats.raced} == set(range(SERVERS))


def test_every_server_publishes_the_same_signing_keys(scale_out: Scenario) -> None:
    configured = [(k.key_id, k.public_bytes) for k in parse_signing_keys(scale_out.signing_entry)]
    for server, keys in enumerate(scale_out.keys_by_server):
        assert keys == configured, f"server {server} publishes {keys}, configured {configured}"


def test_an_answer_of_any_server_verifies_with_the_keys_of_another(scale_out: Scenario) -> None:
    answers = scale_out.seats.raced + scale_out.seats.again
    assert answers
    for server, hwid, result in answers:
        published = dict(scale_out.keys_by_server[(server + 1) % SERVERS])
        Ed25519PublicKey.from_public_bytes(published[result.signing_key_id]).verify(result.signature, result.receipt)
        receipt = vpb.ValidationReceipt.FromString(result.receipt)
        assert (receipt.key, receipt.hwid, receipt.code) == (scale_out.seats.key, hwid, result.code)


# Credits


def test_concurrent_creates_across_servers_never_spend_more_credits_than_there_are(scale_out: Scenario) -> None:
    race = scale_out.credits
    assert race.credits_left is not None and race.credits_left >= 0
    for _, quantity, keys in race.issued:
        assert len(keys) == quantity
    issued = [key for _, _, keys in race.issued for key in keys]
    assert len(issued) == CREDITS - race.credits_left, "licenses issued must equal the credits spent"
    assert len(race.listed) == len(set(race.listed)) == len(issued), "ListLicenses must show each license once"
    assert set(race.listed) == set(issued)


def test_creates_the_credits_cannot_cover_are_refused_with_no_credits(scale_out: Scenario) -> None:
    race = scale_out.credits
    assert race.refused, f"{sum(QUANTITIES)} credits were asked for and {CREDITS} given, yet nothing was refused"
    others = [refusal for _, refusal in race.refused
              if (refusal.code, refusal.reason) != (grpc.StatusCode.FAILED_PRECONDITION, "NO_CREDITS")]
    assert not others, f"refused otherwise than FAILED_PRECONDITION/NO_CREDITS: {summary(others)}"
    # Credits only went down, so a refusal of q credits means fewer than q were left then, and still are.
    assert race.credits_left is not None
    smallest_refused = min(quantity for quantity, _ in race.refused)
    assert race.credits_left < smallest_refused, (
        f"{race.credits_left} credits are left, yet a request for {smallest_refused} was refused"
    )


# Seats


def test_devices_racing_across_servers_take_exactly_the_seats(scale_out: Scenario) -> None:
    race = scale_out.seats
    assert not race.failures, summary(race.failures)
    codes = Counter(result.code for _, _, result in race.raced)
    assert codes == {vpb.VALIDATION_CODE_VALID: SEATS, vpb.VALIDATION_CODE_HWID_MISMATCH: DEVICES - SEATS}, codes
    winners = {hwid for _, hwid, result in race.raced if result.code == vpb.VALIDATION_CODE_VALID}
    assert sorted(race.bound) == sorted(winners), "the license must hold exactly the devices that were told VALID"
    bound_events = [row for row in scale_out.outbox
                    if row.license_key == race.key and row.event_type == "license.hwid_bound"]
    assert len(bound_events) == SEATS


def test_seats_taken_on_one_server_are_honoured_by_every_server(scale_out: Scenario) -> None:
    race = scale_out.seats
    winners = {hwid for _, hwid, result in race.raced if result.code == vpb.VALIDATION_CODE_VALID}
    assert len(race.again) == DEVICES
    for server, hwid, result in race.again:
        expected = vpb.VALIDATION_CODE_VALID if hwid in winners else vpb.VALIDATION_CODE_HWID_MISMATCH
        assert result.code == expected, f"server {server}: {hwid} got {vpb.ValidationCode.Name(result.code)}"


# Updates racing on the same licenses


def test_racing_updates_across_servers_keep_each_license_versions_contiguous(scale_out: Scenario) -> None:
    storm = scale_out.storm
    assert not storm.crashes, storm.crashes
    assert not storm.failures, summary(storm.failures)
    versions: dict[str, list[int]] = defaultdict(list)
    for row in scale_out.outbox:  # in id (commit) order
        versions[row.license_key].append(row.version)
    for key in storm.keys:
        final = scale_out.final[key].version
        assert versions[key] == list(range(1, final + 1)), f"{key}: outbox versions {versions[key]}, license at {final}"


def test_every_update_answer_is_the_state_its_version_published(scale_out: Scenario) -> None:
    published = {(r.event.license_key, r.event.version): r.event.license for r in scale_out.received}
    for update in scale_out.storm.updates:
        answer = update.license
        if update.action == lpb.LICENSE_ACTION_REVOKE:
            assert answer.status == lpb.LICENSE_STATUS_REVOKED
        elif update.action == lpb.LICENSE_ACTION_ACTIVATE:
            assert answer.status == lpb.LICENSE_STATUS_ACTIVE
        else:
            assert when(answer.expires_at).timestamp() == pytest.approx(update.requested_expiry, abs=1e-6)
        event = published.get((update.key, answer.version))
        assert event is not None, f"no event of {update.key} version {answer.version} in the stream"
        assert (event.status, event.expires_at) == (answer.status, answer.expires_at), (
            f"server {update.server} answered {update.key} v{answer.version} unlike its event"
        )


# The relays and the stream


def test_the_standby_relay_takes_over_when_the_active_one_is_killed(scale_out: Scenario) -> None:
    relays = scale_out.relays
    assert relays.standby_idle_before, "the second relay was active while the first one led"
    assert relays.killed_first, "the relay killed was not the (only) active one"
    assert relays.killed_mid_batch, "the active relay was never seen inside a batch"
    assert relays.takeover_seconds is not None, f"the standby never became active:\n{relays.standby_log}"
    assert relays.takeover_seconds < TAKEOVER_LIMIT_SECONDS
    assert ACTIVE_LOG_LINE in relays.standby_log
    assert relays.standby_published, "the standby published nothing"


def test_every_committed_event_is_in_the_stream_exactly_once(scale_out: Scenario) -> None:
    assert scale_out.drained_seconds is not None, f"the outbox was not drained in {DRAIN_LIMIT_SECONDS}s"
    assert scale_out.backlog_after == 0
    committed = Counter(str(row.event_id) for row in scale_out.outbox)
    in_stream = Counter(r.event.event_id for r in scale_out.received)
    duplicated = {event_id: n for event_id, n in in_stream.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} events are in the stream more than once"
    missing = set(committed) - set(in_stream)
    assert not missing, f"{len(missing)} of {len(committed)} committed events never reached the stream"
    unexpected = set(in_stream) - set(committed)
    assert not unexpected, f"{len(unexpected)} events in the stream were never committed"
    for r in scale_out.received:
        assert r.headers["Nats-Msg-Id"] == r.headers["ce-id"] == r.event.event_id
        assert r.headers["ce-sequence"] == str(r.event.version)


def test_each_license_events_arrive_in_version_order_without_gaps(scale_out: Scenario) -> None:
    in_stream: dict[str, list[lpb.License]] = defaultdict(list)
    for r in scale_out.received:
        assert r.event.license.version == r.event.version
        in_stream[r.event.license_key].append(r.event.license)
    assert set(in_stream) == {row.license_key for row in scale_out.outbox}
    for key, states in in_stream.items():
        versions = [s.version for s in states]
        assert versions == list(range(1, len(versions) + 1)), f"license {key} arrived as versions {versions}"
    for key, final in scale_out.final.items():  # a consumer applying the stream in order ends where the database is
        last = in_stream[key][-1]
        assert (last.version, last.status, last.expires_at) == (final.version, final.status, final.expires_at), key


def test_each_published_event_changes_the_state_the_one_before_it_left(scale_out: Scenario) -> None:
    """Updates racing on one license from three servers serialize: no change is applied to a stale
    state (two `license.revoked` in a row would mean one was), so each event is a real transition."""
    previous: dict[str, lpb.License] = {}
    for r in scale_out.received:
        event, before = r.event, previous.get(r.event.license_key)
        after = event.license
        where = f"{event.license_key} v{event.version} {event.type}"
        if event.type == "license.created":
            assert before is None, where
        else:
            assert before is not None, f"{where} came before the license's creation"
        if event.type == "license.revoked":
            assert before is not None and before.status != lpb.LICENSE_STATUS_REVOKED, f"{where}: already revoked"
            assert after.status == lpb.LICENSE_STATUS_REVOKED, where
        elif event.type == "license.activated":
            assert before is not None and before.status == lpb.LICENSE_STATUS_REVOKED, f"{where}: was not revoked"
            assert after.status == lpb.LICENSE_STATUS_ACTIVE, where
        elif event.type == "license.extended":
            assert before is not None and before.expires_at != after.expires_at, f"{where}: expiry unchanged"
            assert before.status == after.status, where
        previous[event.license_key] = after
