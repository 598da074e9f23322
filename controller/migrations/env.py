"""Alembic environment: the models' metadata and the URL handed over by ``controller.migrate``."""

from alembic import context
from sqlmodel import SQLModel

import controller.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from controller.storage import partitions

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=partitions.include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
