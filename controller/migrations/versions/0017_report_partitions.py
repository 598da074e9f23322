"""report: keyed by (agent_id, seq, start); on PostgreSQL range-partitioned by day of start

A unique key of a partitioned table must hold the partition key, so ``start`` joins (agent_id, seq):
a replayed report has the same start, so a replay still inserts nothing. SQLite gets the same key.

Revision ID: 0017
Revises: 0016
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from controller.db import UTCDateTime
from controller.storage import partitions

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("agent_id, seq, device_id, start, \"end\", state, cpu_percent, idle_seconds, sessions, slept_seconds, "
            "method, joules, samples, received_at, processes_watched, processes_running")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        start = sa.Column('start', UTCDateTime(timezone=True), primary_key=True, nullable=False)
        with op.batch_alter_table('report', recreate='always', reflect_args=[start]):
            pass
        return
    op.execute("ALTER TABLE report RENAME TO report_unpartitioned")
    op.execute("ALTER TABLE report_unpartitioned RENAME CONSTRAINT report_pkey TO report_unpartitioned_pkey")
    op.execute("ALTER INDEX ix_report_device_start RENAME TO ix_report_unpartitioned_device_start")
    op.execute("CREATE TABLE report (LIKE report_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (start)")
    op.execute("ALTER TABLE report ADD CONSTRAINT report_pkey PRIMARY KEY (agent_id, seq, start)")
    op.create_foreign_key('report_agent_id_fkey', 'report', 'agent', ['agent_id'], ['id'])
    op.create_foreign_key('report_device_id_fkey', 'report', 'device', ['device_id'], ['id'])
    op.create_index('ix_report_device_start', 'report', ['device_id', 'start'])
    now = datetime.now(UTC)
    oldest = bind.execute(sa.text("SELECT min(start) FROM report_unpartitioned")).scalar()
    behind = max(0, (now.date() - oldest.astimezone(UTC).date()).days) if oldest else 0
    partitions.ensure(bind, now, max(behind, 1))
    newest = bind.execute(sa.text("SELECT max(start) FROM report_unpartitioned")).scalar()
    if newest is not None and newest.astimezone(UTC).date() > now.date() + partitions.AHEAD_DAYS:
        partitions.ensure(bind, newest, 0, 0)
    op.execute(f"INSERT INTO report ({_COLUMNS}) SELECT {_COLUMNS} FROM report_unpartitioned")
    op.execute("DROP TABLE report_unpartitioned")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        start = sa.Column('start', UTCDateTime(timezone=True), primary_key=False, nullable=False)
        with op.batch_alter_table('report', recreate='always', reflect_args=[start]):
            pass
        return
    op.execute("ALTER TABLE report RENAME TO report_partitioned")
    op.execute("ALTER TABLE report_partitioned RENAME CONSTRAINT report_pkey TO report_partitioned_pkey")
    op.execute("ALTER INDEX ix_report_device_start RENAME TO ix_report_partitioned_device_start")
    op.execute("CREATE TABLE report (LIKE report_partitioned INCLUDING DEFAULTS)")
    op.execute("ALTER TABLE report ADD CONSTRAINT report_pkey PRIMARY KEY (agent_id, seq)")
    op.create_foreign_key('report_agent_id_fkey', 'report', 'agent', ['agent_id'], ['id'])
    op.create_foreign_key('report_device_id_fkey', 'report', 'device', ['device_id'], ['id'])
    op.create_index('ix_report_device_start', 'report', ['device_id', 'start'])
    op.execute(f"INSERT INTO report ({_COLUMNS}) SELECT DISTINCT ON (agent_id, seq) {_COLUMNS} "
               "FROM report_partitioned ORDER BY agent_id, seq, received_at")
    op.execute("DROP TABLE report_partitioned CASCADE")
