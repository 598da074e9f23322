"""The spool: what the agent promises about reports between collecting them and the controller's ack."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.protocol import Activity, PowerState, Report, from_wire
from agent.spool import Spool

T0 = datetime(2026, 2, 16, 18, 0, tzinfo=UTC)

FROM_ONE = lambda: 0  # noqa: E731  (seqs 1, 2, 3… keep the expectations readable)


def make_report(seq: int) -> Report:
    start = T0 + timedelta(minutes=5 * (seq % 100_000))
    return Report(seq=seq, start=start, end=start + timedelta(minutes=5),
                  activity=Activity(state=PowerState.IDLE, cpu_percent=3.5, idle_seconds=900.0, sessions=1))


def body_size(tmp_path: Path) -> int:
    """The stored size of one report, measured rather than assumed."""
    with Spool(tmp_path / "probe.sqlite3", max_bytes=1 << 20, clock_ms=FROM_ONE) as probe:
        probe.put(make_report(1))
        return probe.stats().pending_bytes


def test_reports_come_back_oldest_first_exactly_as_put(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.sqlite3", max_bytes=1 << 20, clock_ms=FROM_ONE) as spool:
        for seq in (3, 1, 2):
            spool.put(make_report(seq))

        batch = spool.oldest(10)

    assert [seq for seq, _ in batch] == [1, 2, 3]
    assert [from_wire(Report, json.loads(text)) for _, text in batch] == [make_report(s) for s in (1, 2, 3)]


def test_a_batch_is_at_most_the_requested_size(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.sqlite3", max_bytes=1 << 20, clock_ms=FROM_ONE) as spool:
        for seq in range(1, 6):
            spool.put(make_report(seq))

        assert [seq for seq, _ in spool.oldest(2)] == [1, 2]


def test_only_acknowledged_reports_are_removed(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool.sqlite3", max_bytes=1 << 20, clock_ms=FROM_ONE) as spool:
        for seq in range(1, 6):
            spool.put(make_report(seq))

        removed = spool.remove([2, 4, 99])

        assert removed == 2
        assert [seq for seq, _ in spool.oldest(10)] == [1, 3, 5]
        assert spool.stats().pending == 3


def test_rejected_reports_are_removed_and_the_count_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    with Spool(path, max_bytes=1 << 20, clock_ms=FROM_ONE) as spool:
        for seq in range(1, 4):
            spool.put(make_report(seq))
        assert spool.reject([2]) == 1

    with Spool(path, max_bytes=1 << 20, clock_ms=FROM_ONE) as reopened:
        assert [seq for seq, _ in reopened.oldest(10)] == [1, 3]
        assert reopened.stats().rejected == 1


def test_sequence_numbers_keep_rising_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    with Spool(path, max_bytes=1 << 20, clock_ms=FROM_ONE) as spool:
        first = [spool.reserve_seq() for _ in range(3)]
    with Spool(path, max_bytes=1 << 20, clock_ms=FROM_ONE) as reopened:
        after_restart = reopened.reserve_seq()
        assert reopened.stats().last_seq == after_restart

    assert first == [first[0], first[0] + 1, first[0] + 2]
    assert after_restart == first[0] + 3


def test_a_new_spool_numbers_above_any_spool_deleted_before_it(tmp_path: Path) -> None:
    """If the spool file is lost but the credentials survive, the controller still holds the old
    numbers; the new spool must not reuse them, or new reports would be discarded as duplicates."""
    path = tmp_path / "spool.sqlite3"
    with Spool(path, max_bytes=1 << 20) as spool:
        old = [spool.reserve_seq() for _ in range(500)]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    time.sleep(len(old) / 1000)  # the agent hands out at most one number a second; here 500 in a blink
    with Spool(path, max_bytes=1 << 20) as fresh:
        assert fresh.reserve_seq() > max(old)


def test_over_the_bound_the_oldest_are_dropped_and_counted_across_restarts(tmp_path: Path) -> None:
    size = body_size(tmp_path)
    path = tmp_path / "spool.sqlite3"
    with Spool(path, max_bytes=3 * size + size // 2, clock_ms=FROM_ONE) as spool:
        dropped_by_put = [spool.put(make_report(seq)) for seq in range(1, 6)]

        assert dropped_by_put == [0, 0, 0, 1, 1]
        assert [seq for seq, _ in spool.oldest(10)] == [3, 4, 5]
        stats = spool.stats()
        assert stats.dropped == 2
        assert stats.pending_bytes <= stats.max_bytes

    with Spool(path, max_bytes=3 * size + size // 2, clock_ms=FROM_ONE) as reopened:
        assert reopened.stats().dropped == 2


def test_the_newest_report_is_kept_even_when_it_alone_exceeds_the_bound(tmp_path: Path) -> None:
    size = body_size(tmp_path)
    with Spool(tmp_path / "spool.sqlite3", max_bytes=size // 2, clock_ms=FROM_ONE) as spool:
        spool.put(make_report(1))
        spool.put(make_report(2))

        assert [seq for seq, _ in spool.oldest(10)] == [2]
        assert spool.stats().dropped == 1


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from test_spool import make_report
    from agent.spool import Spool

    spool = Spool(Path(sys.argv[1]), max_bytes=1 << 30)
    while True:
        seq = spool.reserve_seq()
        print("reserved", seq, flush=True)
        spool.put(make_report(seq))
        print("put", seq, flush=True)
""")


def run_writer_until_killed(path: Path, puts_before_kill: int) -> tuple[list[int], list[int]]:
    """Start a writer, SIGKILL it while it is still writing; return the seqs it reserved and put."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(Path(__file__).parent)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    reserved: list[int] = []
    put: list[int] = []
    try:
        for line in writer.stdout:
            event, seq = line.split()
            (reserved if event == "reserved" else put).append(int(seq))
            if len(put) >= puts_before_kill:
                break
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL, "the writer must die mid-stream, not finish"
    return reserved, put


def test_a_killed_writer_loses_no_spooled_report_and_never_reuses_a_seq(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    all_reserved: list[int] = []
    all_put: list[int] = []
    for puts_before_kill in (40, 25, 60):
        reserved, put = run_writer_until_killed(path, puts_before_kill)
        all_reserved += reserved
        all_put += put

        with Spool(path, max_bytes=1 << 30) as reopened:
            stored = reopened.oldest(1_000_000)
            stored_seqs = [seq for seq, _ in stored]
            assert set(all_put) <= set(stored_seqs), "every report whose put returned is on disk"
            assert len(stored_seqs) == len(set(stored_seqs))
            assert all(from_wire(Report, json.loads(text)).seq == seq for seq, text in stored)
            assert reopened.stats().last_seq >= max(all_reserved)

    assert len(all_reserved) == len(set(all_reserved)), "no sequence number was handed out twice"
