"""device.last_seen without an index, and room on its pages for the update every report makes

Every report sets its device's last_seen. With the column indexed, each of those updates wrote a new entry
in all eight of the device table's indexes (PostgreSQL cannot make a heap-only update when an indexed
column changes): the costliest statement of an ingest group, 1.5 ms of the database's 4.9 ms per group
of 32 reports (bench/README.md, 2026-12-06). No query looks devices up or orders them by last_seen, so
the index goes; and on PostgreSQL the table's pages are filled to 80% from now on, so the next version
of a row fits on its own page, the condition for a heap-only update.

Revision ID: 0025
Revises: 0024
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('device') as batch:
        batch.drop_index('ix_device_last_seen')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE device SET (fillfactor = 80)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE device RESET (fillfactor)')
    with op.batch_alter_table('device') as batch:
        batch.create_index('ix_device_last_seen', ['last_seen'], unique=False)
