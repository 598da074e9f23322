"""device.hand_room, hand_tags, hand_untags, agent_room, agent_tags: rooms and tags by source

A device's room and tags come from four places (register/placement.py): by hand, the asset register
(the existing ``room`` and ``tags`` columns), placement rules (computed, never stored) and the agent's
own labels. Each stored source keeps its own value, so ``caretaker device show`` can say where each came from.

Revision ID: 0019
Revises: 0021
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('device') as batch:
        batch.add_column(sa.Column('hand_room', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('hand_tags', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('hand_untags', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('agent_room', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('agent_tags', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('device') as batch:
        for name in ('agent_tags', 'agent_room', 'hand_untags', 'hand_tags', 'hand_room'):
            batch.drop_column(name)
