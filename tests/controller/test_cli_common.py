"""What every command's --json shares: dates (a batch's collection day, a purchase date) print as ISO text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from controller.cli.common import print_json


@dataclass(frozen=True)
class _Row:
    collected_on: date
    at: datetime
    devices: list[int]


def test_json_output_writes_dates_and_datetimes_as_iso_text(capsys):
    print_json([_Row(date(2026, 11, 2), datetime(2026, 11, 23, 2, 30, tzinfo=UTC), [1, 2])])
    assert json.loads(capsys.readouterr().out) == [
        {"collected_on": "2026-11-02", "at": "2026-11-23T02:30:00+00:00", "devices": [1, 2]}]
