"""report: the processes_absent names an agent watched and found running

Revision ID: 0014
Revises: 0012
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('report') as batch:
        batch.add_column(sa.Column('processes_watched', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('processes_running', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('report') as batch:
        batch.drop_column('processes_running')
        batch.drop_column('processes_watched')
