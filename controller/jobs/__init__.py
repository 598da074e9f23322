"""Singleton jobs: work one replica does at a time (rollups, retention, partitions), with a row per run."""
