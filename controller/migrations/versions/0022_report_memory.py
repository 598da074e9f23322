"""report: the share of memory in use an agent reports (servers' right-sizing)

Revision ID: 0022
Revises: 0017
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0022'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # On PostgreSQL ``report`` is partitioned (0017): a column added to the parent reaches every partition.
    with op.batch_alter_table('report') as batch:
        batch.add_column(sa.Column('memory_percent', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('report') as batch:
        batch.drop_column('memory_percent')
