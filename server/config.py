"""Settings from the environment, in one place (each variable is documented in README.md)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str | None  # libpq form; None: `licensing dev` starts an embedded PostgreSQL
    grpc_listen: str
    db_pool_size: int
    shutdown_grace_seconds: float
    max_concurrent_rpcs: int
    data_dir: Path  # embedded servers' data for `make run`
    log_level: str

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            grpc_listen=env.get("GRPC_LISTEN", "127.0.0.1:50051"),
            db_pool_size=int(env.get("DB_POOL_SIZE", "10")),
            shutdown_grace_seconds=float(env.get("SHUTDOWN_GRACE_SECONDS", "10")),
            max_concurrent_rpcs=int(env.get("MAX_CONCURRENT_RPCS", "1000")),
            data_dir=Path(env.get("LICENSING_DATA_DIR", ".data")),
            log_level=env.get("LOG_LEVEL", "INFO"),
        )

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SystemExit("DATABASE_URL is not set (libpq form: postgresql://user@host:5432/dbname)")
        return self.database_url
