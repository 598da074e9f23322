"""energy_day and energy_month (rollups), rollup_mark, rollup_state, job_run, exported_counter, ix_agent_retired_at

Revision ID: 0016
Revises: 0013
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from controller.db import UTCDateTime

revision: str = '0016'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'energy_day',
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('device.id'), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('hours', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('method', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('joules', sa.Numeric(), nullable=False),
        sa.Column('seconds', sa.Numeric(), nullable=False),
        sa.PrimaryKeyConstraint('device_id', 'day', 'hours', 'state', 'method', 'kind'),
    )
    op.create_table(
        'energy_month',
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('device.id'), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('hours', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('method', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('joules', sa.Numeric(), nullable=False),
        sa.Column('seconds', sa.Numeric(), nullable=False),
        sa.PrimaryKeyConstraint('device_id', 'month', 'days', 'hours', 'state', 'method', 'kind'),
    )
    op.create_table(
        'rollup_mark',
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('device.id'), nullable=False),
        sa.Column('from_day', sa.Date(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('device_id'),
    )
    op.create_table(
        'rollup_state',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('through', sa.Date(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'job_run',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job', sa.String(length=32), nullable=False),
        sa.Column('holder', sa.String(length=100), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime(), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('details', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_job_run_job_started', 'job_run', ['job', 'started_at'])
    op.create_index('ix_agent_retired_at', 'agent', ['retired_at'])
    op.create_table(
        'exported_counter',
        sa.Column('series', sa.String(length=32), nullable=False),
        sa.Column('site', sa.String(length=100), nullable=False),
        sa.Column('device_class', sa.String(length=32), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('method', sa.String(length=16), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('series', 'site', 'device_class', 'state', 'method'),
    )


def downgrade() -> None:
    op.drop_table('exported_counter')
    op.drop_index('ix_agent_retired_at', table_name='agent')
    op.drop_index('ix_job_run_job_started', table_name='job_run')
    op.drop_table('job_run')
    op.drop_table('rollup_state')
    op.drop_table('rollup_mark')
    op.drop_table('energy_month')
    op.drop_table('energy_day')
