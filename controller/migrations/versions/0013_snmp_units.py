"""snmp units: the further chassis of a stack, each a device of its own

Revision ID: 0013
Revises: 0014
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0013'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('snmpunit',
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ),
    sa.ForeignKeyConstraint(['target_id'], ['snmptarget.id'], ),
    sa.PrimaryKeyConstraint('target_id', 'unit')
    )
    with op.batch_alter_table('snmpunit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snmpunit_device_id'), ['device_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('snmpunit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_snmpunit_device_id'))
    op.drop_table('snmpunit')
