"""Keeping the database's size in hand: report partitions (PostgreSQL), retention, and what each table holds."""
