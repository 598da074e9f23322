"""energy tables: power catalogue overrides, tariffs, carbon factor overrides, cached carbon intensity

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import controller.db

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('carbonfactoroverride',
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('generation_kg_per_kwh', sa.Float(), nullable=False),
    sa.Column('td_kg_per_kwh', sa.Float(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('updated_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('year')
    )
    op.create_table('carbonintensityperiod',
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('start', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('forecast_g_per_kwh', sa.Integer(), nullable=False),
    sa.Column('actual_g_per_kwh', sa.Integer(), nullable=True),
    sa.Column('fetched_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('region', 'start')
    )
    op.create_table('powercatalogueoverride',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('device_class', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('vendor', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('active_watts', sa.Float(), nullable=False),
    sa.Column('idle_watts', sa.Float(), nullable=False),
    sa.Column('sleep_watts', sa.Float(), nullable=False),
    sa.Column('off_watts', sa.Float(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('updated_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device_class', 'vendor', 'model', name='uq_powercatalogue_key')
    )
    op.create_table('tariff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('valid_from', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('standing_pence_per_day', sa.Float(), nullable=False),
    sa.Column('bands', sa.JSON(), nullable=False),
    sa.Column('updated_at', controller.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('site_id', 'valid_from', name='uq_tariff_site_from')
    )
    with op.batch_alter_table('tariff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tariff_site_id'), ['site_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tariff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tariff_site_id'))

    op.drop_table('tariff')
    op.drop_table('powercatalogueoverride')
    op.drop_table('carbonintensityperiod')
    op.drop_table('carbonfactoroverride')
