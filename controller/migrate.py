"""Bring a database to the current schema. Every controller start runs this; it is a no-op when current.

Several replicas may start at once against PostgreSQL, so the upgrade runs under an advisory lock: one per
schema, so estates sharing a database do not wait for each other's upgrades.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from controller.db import ADVISORY_KEY

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x63617265  # "care"


def alembic_config() -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def head() -> str:
    """The newest revision: what ``upgrade`` brings a database to. Read once per process (the scripts are
    the installed code's): ``/readyz`` asks on every balancer health check, and reading the chain imports
    every migration script, tens of milliseconds on the event loop each time."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock{ADVISORY_KEY}"), {"k": _LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def revision(engine: Engine, message: str, rev_id: str) -> None:
    """Autogenerate the next migration from the models (developers only). Revisions are numbered
    ("0002", "0003", ...) so the chain reads in order."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
