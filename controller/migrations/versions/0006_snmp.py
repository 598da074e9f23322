"""snmp tables

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import controller.db

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('snmptarget',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('profile', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('credential', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('added_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_poll_at', controller.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_ok_at', controller.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('address', 'port', name='uq_snmptarget_address_port')
    )
    with op.batch_alter_table('snmptarget', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snmptarget_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_snmptarget_site_id'), ['site_id'], unique=False)

    op.create_table('snmpreading',
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('watts', sa.Float(), nullable=True),
    sa.Column('energy_joules', sa.Float(), nullable=True),
    sa.Column('page_count', sa.BigInteger(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('loads', sa.JSON(), nullable=True),
    sa.Column('supplies', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['target_id'], ['snmptarget.id'], ),
    sa.PrimaryKeyConstraint('target_id', 'at')
    )
    op.create_table('snmpmeteredhour',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('hour', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('joules', sa.Float(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ),
    sa.PrimaryKeyConstraint('device_id', 'hour', 'state')
    )


def downgrade() -> None:
    op.drop_table('snmpmeteredhour')
    op.drop_table('snmpreading')
    with op.batch_alter_table('snmptarget', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_snmptarget_site_id'))
        batch_op.drop_index(batch_op.f('ix_snmptarget_device_id'))
    op.drop_table('snmptarget')
