"""lifecycle: asset register, transitions, disposal evidence and batches, embodied-carbon overrides

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import controller.db

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('disposalbatch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('transfer_note_ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('carrier', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('recycler', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('accreditation', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('collected_on', sa.Date(), nullable=False),
    sa.Column('retain_until', sa.Date(), nullable=False),
    sa.Column('created_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('embodiedfactor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_class', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('vendor', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('kg_co2e', sa.Float(), nullable=False),
    sa.Column('lifetime_years', sa.Float(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device_class', 'vendor', 'model', name='uq_embodiedfactor_key')
    )
    op.create_table('asset',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('asset_tag', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('assigned_to', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('location', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('purchase_date', sa.Date(), nullable=True),
    sa.Column('purchase_price_pence', sa.Integer(), nullable=True),
    sa.Column('supplier', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('procurement_route', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('funding', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('warranty_end', sa.Date(), nullable=True),
    sa.Column('os_end_of_support', sa.Date(), nullable=True),
    sa.Column('review_date', sa.Date(), nullable=True),
    sa.Column('disposed_on', sa.Date(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['disposalbatch.id'], ),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ),
    sa.PrimaryKeyConstraint('device_id'),
    sa.UniqueConstraint('asset_tag')
    )
    op.create_index(op.f('ix_asset_batch_id'), 'asset', ['batch_id'], unique=False)
    op.create_index(op.f('ix_asset_state'), 'asset', ['state'], unique=False)
    op.create_table('disposalevidence',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('certificate_ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('sanitised_on', sa.Date(), nullable=True),
    sa.Column('transfer_note_ref', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('carrier', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('recycler', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('accreditation', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('collected_on', sa.Date(), nullable=True),
    sa.Column('retain_until', sa.Date(), nullable=True),
    sa.Column('updated_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('transition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('from_state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('to_state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_transition_device_id'), 'transition', ['device_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_transition_device_id'), table_name='transition')
    op.drop_table('transition')
    op.drop_table('disposalevidence')
    op.drop_index(op.f('ix_asset_state'), table_name='asset')
    op.drop_index(op.f('ix_asset_batch_id'), table_name='asset')
    op.drop_table('asset')
    op.drop_table('embodiedfactor')
    op.drop_table('disposalbatch')
