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
