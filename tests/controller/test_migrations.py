"""The schema comes from Alembic migrations, and they must say exactly what the models say."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import controller.tables  # noqa: F401  (every table)
from controller import migrate
from controller.storage.partitions import include_name


def test_migrations_build_the_schema_the_models_describe(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_upgrading_a_current_database_is_a_no_op(engine):
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == migrate.head()


def test_the_head_revision_is_read_from_the_scripts_once_per_process(monkeypatch):
    """/readyz compares the database with the head on every balancer health check; reading the chain imports
    every migration script, tens of milliseconds on the event loop each time."""
    migrate.head.cache_clear()
    first = migrate.head()

    def read_again(*args, **kwargs):
        raise AssertionError("the migration scripts were read again")

    monkeypatch.setattr(migrate.ScriptDirectory, "from_config", read_again)
    assert migrate.head() == first
