"""asset: the device's Extended Security Updates enrolment

Revision ID: 0010
Revises: 0008
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('asset') as batch:
        batch.add_column(sa.Column('os_esu', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('asset') as batch:
        batch.drop_column('os_esu')
