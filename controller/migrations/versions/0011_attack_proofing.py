"""enrollment conflicts, one machine per credential, report overlap and power ceilings

Revision ID: 0011
Revises: 0010
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import controller.db

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('device') as batch:
        batch.add_column(sa.Column('conflict_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    with op.batch_alter_table('agent') as batch:
        batch.add_column(sa.Column('last_end', controller.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('fingerprint', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('shared_since', controller.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('shared_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch.add_column(sa.Column('shared_inventory', sa.JSON(), nullable=True))
    with op.batch_alter_table('powercatalogueoverride') as batch:
        batch.add_column(sa.Column('ceiling_watts', sa.Float(), nullable=True))
    # Devices kept apart before this revision were all cloned images.
    op.execute("UPDATE device SET conflict_kind = 'clone' WHERE conflict_with IS NOT NULL")
    # Agents enrolled before this revision: their last report's end, so overlap checks start from it.
    op.execute("UPDATE agent SET last_end = (SELECT max(report.\"end\") FROM report WHERE report.agent_id = agent.id)")


def downgrade() -> None:
    with op.batch_alter_table('powercatalogueoverride') as batch:
        batch.drop_column('ceiling_watts')
    with op.batch_alter_table('agent') as batch:
        for column in ('shared_inventory', 'shared_reason', 'shared_since', 'fingerprint', 'last_end'):
            batch.drop_column(column)
    with op.batch_alter_table('device') as batch:
        batch.drop_column('conflict_kind')
