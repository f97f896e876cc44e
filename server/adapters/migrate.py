"""Runs the Alembic migrations in server/migrations, configured in code (no alembic.ini to keep in sync)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from .db import sqlalchemy_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["sqlalchemy_url"] = sqlalchemy_url(database_url)
    return config


def migrate(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")
