"""awake_hour: what held each device awake, by device and UTC hour (issue 18, insomnia)

Report rows are not touched (PostgreSQL partitions them with a fixed column list in 0017): the holders
live in their own table, which report retention leaves alone. Update states and deferral reasons go to
the existing action_record (kind "updates"; details.deferred_for).

Revision ID: 0020
Revises: 0019
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from controller.db import UTCDateTime

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'awake_hour',
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('device.id'), nullable=False),
        sa.Column('hour', UTCDateTime(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('what', sa.String(length=255), nullable=False),
        sa.Column('process', sa.String(length=255), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('device_id', 'hour', 'kind', 'what', 'process'),
    )


def downgrade() -> None:
    op.drop_table('awake_hour')
