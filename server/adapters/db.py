"""Connections to PostgreSQL: one pooled async engine per process."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def sqlalchemy_url(database_url: str) -> str:
    """The libpq URL of the configuration, pointed at SQLAlchemy's psycopg 3 dialect."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError("DATABASE_URL must look like postgresql://user@host:port/dbname")
    return f"postgresql+psycopg://{rest}"


def statement_timeout_option(milliseconds: int) -> str:
    """libpq `options` that make PostgreSQL cancel any statement running longer: no call can hold
    a lock or a connection for longer than a client would wait for its answer."""
    return f"-c statement_timeout={milliseconds}"


def connection_wait_seconds(statement_timeout_ms: int) -> float:
    """How long a call waits for a pooled connection: as long as a statement may run (30 s when
    statements may run for ever). When PostgreSQL is down no connection comes, and calls should fail
    UNAVAILABLE soon rather than hang until their deadline."""
    return statement_timeout_ms / 1000 if statement_timeout_ms > 0 else 30.0


def create_engine(database_url: str, pool_size: int = 10, statement_timeout_ms: int = 0) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        pool_timeout=connection_wait_seconds(statement_timeout_ms),
        max_overflow=0,  # a fixed ceiling: every process's connections add up on the one PostgreSQL
        pool_pre_ping=False,  # a broken connection fails one call; pinging costs every call a round trip
        connect_args={"options": statement_timeout_option(statement_timeout_ms)},
        hide_parameters=True,  # errors and logs never carry a statement's values (keys, token hashes)
    )
