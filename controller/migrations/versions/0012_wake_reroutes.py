"""wake requests count their reroutes and dispatcher errors, and name the relays passed over

Revision ID: 0012
Revises: 0011
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('wakerequest', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reroutes', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('passed_over', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('errors', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('wakerequest', schema=None) as batch_op:
        batch_op.drop_column('errors')
        batch_op.drop_column('passed_over')
        batch_op.drop_column('reroutes')
