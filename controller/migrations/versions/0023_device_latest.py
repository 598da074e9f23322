"""device_latest: each device's latest report, kept by ingest (filled here from the reports stored)

Revision ID: 0023
Revises: 0018 (reserved as 0023, after 0017; chained after main's head at the merge)
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from controller.db import UTCDateTime

revision: str = '0023'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each device's latest start; of the reports sharing it (two agents of one re-enrolled machine), the later end.
_FILL = """
INSERT INTO device_latest (device_id, start, "end", state, method, joules)
SELECT r.device_id, r.start, r."end", min(r.state), min(r.method), min(r.joules)
FROM report r
JOIN (SELECT n.device_id, n.start, max(e."end") AS "end"
      FROM (SELECT device_id, max(start) AS start FROM report GROUP BY device_id) n
      JOIN report e ON e.device_id = n.device_id AND e.start = n.start
      GROUP BY n.device_id, n.start) l
  ON r.device_id = l.device_id AND r.start = l.start AND r."end" = l."end"
GROUP BY r.device_id, r.start, r."end"
"""


def upgrade() -> None:
    op.create_table(
        'device_latest',
        sa.Column('device_id', sa.Integer(), sa.ForeignKey('device.id'), nullable=False),
        sa.Column('start', UTCDateTime(timezone=True), nullable=False),
        sa.Column('end', UTCDateTime(timezone=True), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column('joules', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('device_id'),
    )
    op.execute(_FILL)


def downgrade() -> None:
    op.drop_table('device_latest')
