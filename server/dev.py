"""`licensing dev`, what `make run` starts: the whole working system from one command.

With DATABASE_URL unset it starts an embedded PostgreSQL (data in .data/postgres, kept between
runs), with NATS_URL unset an embedded nats-server with JetStream (data in .data/nats), migrates, creates a demo account, app and token on first start, prints ready-to-paste
grpcurl commands, and serves.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import psycopg

from server.adapters.accounts_repository import AccountsRepository
from server.adapters.db import create_engine
from server.adapters.embedded_nats import EmbeddedNats, free_port, port_is_open
from server.adapters.embedded_postgres import database_url_for, start_embedded_postgres
from server.adapters.migrate import migrate
from server.adapters.signing import new_signing_key_entry
from server.config import Settings
from server.domain.tokens import hash_token
from server.service.accounts import AccountService

DEV_DATABASE = "licensing"
DEMO_CREDITS = 1000
DEFAULT_NATS_PORT = 4222
DEV_METRICS_LISTEN = "127.0.0.1:9464"


def run_dev(settings: Settings) -> None:
    from server.api.workers import serve_workers

    database_url = settings.database_url or _embedded_database(settings.data_dir)
    nats = None if settings.nats_url else EmbeddedNats(settings.data_dir / "nats", _nats_port()).start()
    settings = replace(
        settings,
        database_url=database_url,
        nats_url=settings.nats_url or (nats.url if nats else None),
        metrics_listen=settings.metrics_listen or DEV_METRICS_LISTEN,
        signing_keys_file=settings.signing_keys_file or _dev_signing_keys(settings),
    )
    try:
        migrate(database_url)
        demo = asyncio.run(_demo_account(database_url, settings.data_dir / "demo.json"))
        print(_banner(settings, demo), flush=True)
        serve_workers(settings)
    finally:
        if nats:
            nats.stop()


def _dev_signing_keys(settings: Settings) -> Path | None:
    """A signing key made on first start and kept in .data, unless one is configured."""
    if settings.signing_keys:
        return None
    path = settings.data_dir / "signing-keys"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_signing_key_entry("dev-1") + "\n")
        path.chmod(0o600)
    return path


def _nats_port() -> int:
    """NATS's usual port when it is free, so consumers find it; any free one otherwise."""
    return DEFAULT_NATS_PORT if not port_is_open("127.0.0.1", DEFAULT_NATS_PORT) else free_port()


def _embedded_database(data_dir: Path) -> str:
    server_url = start_embedded_postgres(data_dir / "postgres", keep_running=True)
    with psycopg.connect(server_url, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEV_DATABASE,)).fetchone():
            connection.execute(f'CREATE DATABASE "{DEV_DATABASE}"')
    return database_url_for(server_url, DEV_DATABASE)


async def _demo_account(database_url: str, saved: Path) -> dict[str, str]:
    """The demo account of an earlier start, or a new one. Its token is kept in .data (git-ignored) to reprint it."""
    engine = create_engine(database_url, pool_size=1)
    accounts = AccountService(engine)
    try:
        if saved.exists():
            demo: dict[str, str] = json.loads(saved.read_text())
            async with engine.connect() as connection:
                if await AccountsRepository(connection).account_of_token(hash_token(demo["token"])):
                    return demo  # else another database, or the token was revoked: make a new demo account
        issued = await accounts.create_account("demo", DEMO_CREDITS)
        app_id = await accounts.create_app(issued.account_id, "demo-app")
        demo = {"account_id": str(issued.account_id), "app_id": str(app_id), "token": issued.token}
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(demo))
        saved.chmod(0o600)
        return demo
    finally:
        await engine.dispose()


def _banner(settings: Settings, demo: dict[str, str]) -> str:
    address, token, app = settings.grpc_listen, demo["token"], demo["app_id"]
    call = f"grpcurl -plaintext -H 'authorization: Bearer {token}'"
    return f"""
License service on {address}
  DATABASE_URL={settings.database_url}
  NATS_URL={settings.nats_url} (stream {settings.nats_stream}), metrics http://{settings.metrics_listen}/metrics
  demo account {demo['account_id']} ({DEMO_CREDITS} credits at creation), app {app}
  token: {token}

Try it (another terminal):
  grpcurl -plaintext {address} list
  {call} -d '{{"appId": "{app}", "quantity": 2, "label": "demo"}}' {address} licensing.v1.LicenseService/CreateLicenses
  {call} -d '{{"appId": "{app}", "limit": 10}}' {address} licensing.v1.LicenseService/ListLicenses
  {call} -d '{{"key": "KEY"}}' {address} licensing.v1.LicenseService/GetLicense
  {call} -d '{{"key": "KEY", "action": "LICENSE_ACTION_REVOKE"}}' {address} licensing.v1.LicenseService/UpdateLicense
  {call} -d '{{"key": "KEY"}}' {address} licensing.v1.LicenseService/DeleteLicense
Events: NATS_URL={settings.nats_url} .venv/bin/licensing events tail --from-start
Operators: DATABASE_URL='{settings.database_url}' .venv/bin/licensing admin show-account --account {demo['account_id']}
"""
