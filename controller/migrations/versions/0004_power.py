"""power tables

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import controller.db

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('wakerequest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('mac', sqlmodel.sql.sqltypes.AutoString(length=17), nullable=False),
    sa.Column('network', sqlmodel.sql.sqltypes.AutoString(length=43), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('requested_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('route', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('sent_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('relay_agent_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('ordered_at', controller.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', controller.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', controller.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_at', controller.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failure', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wakerequest', schema=None) as batch_op:
        batch_op.create_index('ix_wakerequest_status_due', ['status', 'due_at'], unique=False)
        batch_op.create_index('ix_wakerequest_device_status', ['device_id', 'status'], unique=False)
        batch_op.create_index('ix_wakerequest_site_due', ['site_id', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_wakerequest_relay_agent_id'), ['relay_agent_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('wakerequest', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wakerequest_relay_agent_id'))
        batch_op.drop_index('ix_wakerequest_site_due')
        batch_op.drop_index('ix_wakerequest_device_status')
        batch_op.drop_index('ix_wakerequest_status_due')

    op.drop_table('wakerequest')
