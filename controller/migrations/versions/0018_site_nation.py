"""site.nation: which UK nation a site is in (england, wales, scotland, northern_ireland)

Revision ID: 0018
Revises: 0020
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('site') as batch:
        batch.add_column(sa.Column('nation', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('site') as batch:
        batch.drop_column('nation')
