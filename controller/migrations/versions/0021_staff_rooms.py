"""staffroom: the rooms a staff user or staff API token may wake (a teacher's wake button)

Revision ID: 0021
Revises: 0022 (reserved as 0021, after 0017; chained after main's 0022 at the merge)
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0021'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('staffroom',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('room', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ),
    sa.ForeignKeyConstraint(['token_id'], ['apitoken.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('staffroom', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staffroom_token_id'), ['token_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staffroom_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('staffroom', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staffroom_user_id'))
        batch_op.drop_index(batch_op.f('ix_staffroom_token_id'))
    op.drop_table('staffroom')
