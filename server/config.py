"""Settings from the environment, in one place (each variable is documented in README.md)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc

from server.outbox.relay import RelayConfig


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


@dataclass(frozen=True)
class Settings:
    database_url: str | None  # libpq form; None: `licensing dev` starts an embedded PostgreSQL
    grpc_listen: str
    workers: int  # server processes sharing the port
    db_pool_size: int
    db_statement_timeout_ms: int
    token_cache_seconds: float  # a live token is served from memory this long at most (a NOTIFY ends it sooner); <= 0: off
    shutdown_grace_seconds: float
    max_concurrent_rpcs: int
    data_dir: Path  # embedded servers' data for `make run`
    log_level: str
    log_json: bool  # LOG_FORMAT=json (default): one JSON object per line
    nats_url: str | None  # None: no relay in `serve`; `licensing dev` starts an embedded nats-server
    nats_stream: str
    nats_subject_prefix: str
    nats_duplicate_window_seconds: float
    relay_enabled: bool
    relay_batch_size: int
    relay_poll_seconds: float
    relay_batch_interval_ms: float
    outbox_retention_hours: float
    metrics_listen: str | None
    signing_keys: str | None  # `<key_id>:<base64 seed>` entries; see server/adapters/signing.py
    signing_keys_file: Path | None
    receipt_ttl_seconds: float
    tls_cert: Path | None  # PEM; with tls_key: TLS on the gRPC port
    tls_key: Path | None
    tls_client_ca: Path | None  # PEM; set: clients must present a certificate it signed (mutual TLS)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            grpc_listen=env.get("GRPC_LISTEN", "127.0.0.1:50051"),
            workers=int(env.get("GRPC_WORKERS", "0")) or os.cpu_count() or 1,
            db_pool_size=int(env.get("DB_POOL_SIZE", "10")),
            db_statement_timeout_ms=int(env.get("DB_STATEMENT_TIMEOUT_MS", "5000")),
            token_cache_seconds=float(env.get("TOKEN_CACHE_SECONDS", "5")),
            shutdown_grace_seconds=float(env.get("SHUTDOWN_GRACE_SECONDS", "10")),
            max_concurrent_rpcs=int(env.get("MAX_CONCURRENT_RPCS", "1000")),
            data_dir=Path(env.get("LICENSING_DATA_DIR", ".data")),
            log_level=env.get("LOG_LEVEL", "INFO"),
            log_json=env.get("LOG_FORMAT", "json").lower() != "text",
            nats_url=env.get("NATS_URL") or None,
            nats_stream=env.get("NATS_STREAM", "LICENSING_EVENTS"),
            nats_subject_prefix=env.get("NATS_SUBJECT_PREFIX", "licensing.events"),
            nats_duplicate_window_seconds=float(env.get("NATS_DUPLICATE_WINDOW_SECONDS", "600")),
            relay_enabled=env.get("RELAY_ENABLED", "true").lower() not in ("0", "false", "no"),
            relay_batch_size=int(env.get("RELAY_BATCH_SIZE", "500")),
            relay_poll_seconds=float(env.get("RELAY_POLL_SECONDS", "1")),
            relay_batch_interval_ms=float(env.get("RELAY_BATCH_INTERVAL_MS", "5")),
            outbox_retention_hours=float(env.get("OUTBOX_RETENTION_HOURS", str(7 * 24))),
            metrics_listen=env.get("METRICS_LISTEN") or None,
            signing_keys=env.get("SIGNING_KEYS") or None,
            signing_keys_file=Path(env["SIGNING_KEYS_FILE"]) if env.get("SIGNING_KEYS_FILE") else None,
            receipt_ttl_seconds=float(env.get("RECEIPT_TTL_SECONDS", "3600")),
            tls_cert=_path(env.get("GRPC_TLS_CERT")),
            tls_key=_path(env.get("GRPC_TLS_KEY")),
            tls_client_ca=_path(env.get("GRPC_TLS_CLIENT_CA")),
        )

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """TLS (and mutual TLS) credentials for the gRPC port, or None for plaintext."""
        if not (self.tls_cert or self.tls_key):
            if self.tls_client_ca:
                raise SystemExit("GRPC_TLS_CLIENT_CA needs GRPC_TLS_CERT and GRPC_TLS_KEY")
            return None
        if not (self.tls_cert and self.tls_key):
            raise SystemExit("set both GRPC_TLS_CERT and GRPC_TLS_KEY")
        client_ca = self.tls_client_ca.read_bytes() if self.tls_client_ca else None
        return grpc.ssl_server_credentials(
            [(self.tls_key.read_bytes(), self.tls_cert.read_bytes())],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SystemExit("DATABASE_URL is not set (libpq form: postgresql://user@host:5432/dbname)")
        return self.database_url

    def signing_key_spec(self) -> str | None:
        if self.signing_keys:
            return self.signing_keys
        if self.signing_keys_file:
            return self.signing_keys_file.read_text()
        return None

    def relay_config(self) -> RelayConfig:
        if not self.nats_url:
            raise SystemExit("NATS_URL is not set (e.g. nats://127.0.0.1:4222)")
        return RelayConfig(
            database_url=self.require_database_url(),
            nats_url=self.nats_url,
            stream=self.nats_stream,
            subject_prefix=self.nats_subject_prefix,
            duplicate_window=self.nats_duplicate_window_seconds,
            batch_size=self.relay_batch_size,
            poll_seconds=self.relay_poll_seconds,
            min_batch_interval=self.relay_batch_interval_ms / 1000,
            retention=timedelta(hours=self.outbox_retention_hours),
        )
