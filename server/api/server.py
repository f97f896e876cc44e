"""Assembles the grpc.aio server: the license API, health, reflection, graceful shutdown."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from licensing.v1 import (
    licenses_pb2,
    validation_pb2,
)
from server.adapters.db import create_engine
from server.adapters.hot_reads import HotReads, open_fast_pool
from server.adapters.license_issuer import LicenseIssuer
from server.adapters.license_writer import LicenseWriter
from server.adapters.signing import Signer, new_signing_key_entry, parse_signing_keys
from server.adapters.token_cache import TokenCache
from server.config import Settings
from server.runtime import (
    start_metrics,
    start_relay,
    stop_task,
    wait_for_shutdown_signal,
)
from server.service.auth import Authenticator
from server.service.licenses import LicenseService
from server.service.validation import ValidationService

from .database_health import watch_database
from .license_servicer import LicenseServicer
from .registration import add_servicer
from .validation_servicer import ValidationServicer

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
LICENSE_SERVICE = licenses_pb2.DESCRIPTOR.services_by_name["LicenseService"]
VALIDATION_SERVICE = validation_pb2.DESCRIPTOR.services_by_name["ValidationService"]
SERVICE_NAMES = [LICENSE_SERVICE.full_name, VALIDATION_SERVICE.full_name]


def with_signing_keys(settings: Settings) -> Settings:
    """Settings that name a signing key: the configured ones, else one throwaway key for all workers."""
    if settings.signing_key_spec() is not None:
        return settings
    # Fine for a try-out, wrong for production: clients cannot pin a key that changes at every start.
    log.warning("SIGNING_KEYS/SIGNING_KEYS_FILE unset: validation answers are signed with a throwaway key")
    return replace(settings, signing_keys=new_signing_key_entry("ephemeral"))


def load_signer(settings: Settings) -> Signer:
    spec = settings.signing_key_spec()
    if spec is None:
        raise SystemExit("no signing key: set SIGNING_KEYS or SIGNING_KEYS_FILE")
    return Signer(parse_signing_keys(spec))


async def serve(settings: Settings, reuse_port: bool = False) -> None:
    signer = load_signer(settings)  # before anything starts: a bad key fails fast
    database_url, timeout_ms = settings.require_database_url(), settings.db_statement_timeout_ms
    engine = create_engine(database_url, settings.db_pool_size, timeout_ms)
    fast_pool = await open_fast_pool(database_url, settings.db_pool_size, timeout_ms)
    token_cache = TokenCache(settings.token_cache_seconds)
    reads = HotReads(fast_pool, token_cache)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    auth = Authenticator(reads)
    add_servicer(server, LICENSE_SERVICE, LicenseServicer(
        LicenseService(engine, reads, LicenseIssuer(fast_pool), LicenseWriter(fast_pool)), auth))
    add_servicer(server, VALIDATION_SERVICE, ValidationServicer(
        ValidationService(engine, reads), auth, signer, timedelta(seconds=settings.receipt_ttl_seconds)))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)

    credentials = settings.server_credentials()
    if credentials is None:
        port = server.add_insecure_port(settings.grpc_listen)
    else:
        port = server.add_secure_port(settings.grpc_listen, credentials)
    await server.start()
    for name in ["", *SERVICE_NAMES]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving gRPC on %s (port %d, %s)", settings.grpc_listen, port,
             "plaintext" if credentials is None else "mutual TLS" if settings.tls_client_ca else "TLS")
    start_metrics(settings)
    relay = start_relay(settings)
    database_watch = asyncio.create_task(watch_database(database_url, fast_pool, engine, health_servicer, ["", *SERVICE_NAMES]))
    token_listener = asyncio.create_task(token_cache.listen(database_url), name="token-cache-listener")

    await wait_for_shutdown_signal()

    log.info("shutting down: draining calls for up to %.0fs", settings.shutdown_grace_seconds)
    await health_servicer.enter_graceful_shutdown()  # probes see NOT_SERVING while calls drain
    await server.stop(settings.shutdown_grace_seconds)
    await stop_task(relay)
    await stop_task(database_watch)
    await stop_task(token_listener)
    await reads.close()
    await fast_pool.close()
    await engine.dispose()
