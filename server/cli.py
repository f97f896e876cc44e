"""The `licensing` command: serve, migrate, dev, and the operators' `admin` commands."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from server.adapters.db import create_engine
from server.adapters.migrate import migrate
from server.config import Settings
from server.domain.caller import ALL_SCOPES, parse_scopes
from server.domain.errors import DomainError
from server.runtime import configure_logging
from server.service.accounts import AccountService


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    try:
        return int(args.run(settings, args) or 0)
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from server.api.workers import serve_workers

    return serve_workers(settings)


def _relay(settings: Settings, args: argparse.Namespace) -> None:
    from server.runtime import run_relay

    asyncio.run(run_relay(settings))


def _events_tail(settings: Settings, args: argparse.Namespace) -> None:
    from server.outbox.tail import tail

    if not settings.nats_url:
        raise SystemExit("NATS_URL is not set (e.g. nats://127.0.0.1:4222)")
    coroutine = tail(settings.nats_url, settings.nats_stream, settings.nats_subject_prefix,
                     args.app, args.type, args.from_start, args.limit)
    try:
        asyncio.run(coroutine)
    except KeyboardInterrupt:
        pass


def _migrate(settings: Settings, args: argparse.Namespace) -> None:
    migrate(settings.require_database_url())
    print("database is at the latest schema")


def _dev(settings: Settings, args: argparse.Namespace) -> None:
    from server.dev import run_dev

    run_dev(settings)


def _admin(action: Callable[[AccountService, argparse.Namespace], Awaitable[dict[str, Any]]]) -> Callable[[Settings, argparse.Namespace], None]:
    """Runs one operator command against DATABASE_URL and prints its result."""

    def run(settings: Settings, args: argparse.Namespace) -> None:
        async def call() -> dict[str, Any]:
            engine = create_engine(settings.require_database_url(), pool_size=1)
            try:
                return await action(AccountService(engine), args)
            finally:
                await engine.dispose()

        result = asyncio.run(call())
        if args.json:
            print(json.dumps(result))
        else:
            for name, value in result.items():
                print(f"{name}: {value}")

    return run


async def _create_account(accounts: AccountService, args: argparse.Namespace) -> dict[str, Any]:
    issued = await accounts.create_account(args.name, args.credits)
    return {"account_id": str(issued.account_id), "token": issued.token, "token_id": str(issued.token_id),
            "credits": args.credits}


async def _create_app(accounts: AccountService, args: argparse.Namespace) -> dict[str, Any]:
    app_id = await accounts.create_app(args.account, args.name)
    return {"account_id": str(args.account), "app_id": str(app_id)}


async def _add_credits(accounts: AccountService, args: argparse.Namespace) -> dict[str, Any]:
    return {"account_id": str(args.account), "credits": await accounts.add_credits(args.account, args.amount)}


async def _show_account(accounts: AccountService, args: argparse.Namespace) -> dict[str, Any]:
    return await accounts.show_account(args.account)


async def _create_token(accounts: AccountService, args: argparse.Namespace) -> dict[str, Any]:
    issued = await accounts.create_token(args.account, args.name, args.scopes, args.expires_at)
    return {"account_id": str(issued.account_id), "token": issued.token, "token_id": str(issued.token_id),
            "scopes": sorted(s.value for s in args.scopes),
            "expires_at": args.expires_at.isoformat() if args.expires_at else None}


async def _revoke_token(accounts: AccountService, args: argparse.Namespace) -> dict[str, Any]:
    account_id = await accounts.revoke_token(args.token_id)
    return {"account_id": str(account_id), "token_id": str(args.token_id), "revoked": True}


def _aware_datetime(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="licensing", description="License-key service")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    commands.add_parser("serve", help="serve gRPC on GRPC_LISTEN").set_defaults(run=_serve)
    commands.add_parser("relay", help="publish the outbox to NATS JetStream (no gRPC)").set_defaults(run=_relay)
    commands.add_parser("migrate", help="bring DATABASE_URL's schema up to date").set_defaults(run=_migrate)
    commands.add_parser(
        "dev", help="what `make run` does: embedded PostgreSQL when DATABASE_URL is unset, migrate, demo data, serve"
    ).set_defaults(run=_dev)

    events = commands.add_parser("events", help="read the event stream").add_subparsers(required=True, metavar="ACTION")
    sub = events.add_parser("tail", help="print events as JSON lines as they are published")
    sub.add_argument("--app", help="only this app id")
    sub.add_argument("--type", help="only this event type, e.g. license.revoked")
    sub.add_argument("--from-start", action="store_true", help="replay the stream from its first event")
    sub.add_argument("--limit", type=int, help="stop after this many events")
    sub.set_defaults(run=_events_tail)

    admin = commands.add_parser("admin", help="operators' commands").add_subparsers(required=True, metavar="ACTION")

    def command(name: str, help_text: str, action: Callable[..., Awaitable[dict[str, Any]]]) -> argparse.ArgumentParser:
        sub = admin.add_parser(name, help=help_text)
        sub.add_argument("--json", action="store_true", help="print one JSON object")
        sub.set_defaults(run=_admin(action))
        return sub

    sub = command("create-account", "create an account and its first API token (shown once)", _create_account)
    sub.add_argument("--name", required=True)
    sub.add_argument("--credits", type=int, default=0)
    sub = command("create-app", "create an app owned by an account", _create_app)
    sub.add_argument("--account", type=uuid.UUID, required=True)
    sub.add_argument("--name", required=True)
    sub = command("add-credits", "add credits to an account", _add_credits)
    sub.add_argument("--account", type=uuid.UUID, required=True)
    sub.add_argument("--amount", type=int, required=True)
    sub = command("show-account", "show an account's credits, apps and live token count", _show_account)
    sub.add_argument("--account", type=uuid.UUID, required=True)
    sub = command("create-token", "create another API token for an account (shown once)", _create_token)
    sub.add_argument("--account", type=uuid.UUID, required=True)
    sub.add_argument("--name", default="")
    sub.add_argument("--scopes", type=parse_scopes, default=ALL_SCOPES,
                     help="comma-separated: read (list, get), write (create, update, delete), validate; default all")
    sub.add_argument("--expires-at", type=_aware_datetime, help="ISO 8601 time after which the token stops working")
    sub = command("revoke-token", "revoke an API token by its id; effective within milliseconds on every server", _revoke_token)
    sub.add_argument("--token-id", type=uuid.UUID, required=True)
    return parser


if __name__ == "__main__":
    sys.exit(main())
