"""Logging that stays readable through an outage: a repeated error is logged once per interval, with a count.

While the database is away every request fails the same way; logging each one grew a controller's log by
megabytes in half a minute and buried what came before. :class:`RepeatFilter` sits on the service's log
handlers and lets the first of a kind through, then at most one per ``interval`` seconds, saying how many
like it were held back. :class:`RepeatedError` does the same for one known condition inside a component,
and says when it has cleared.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

DEFAULT_INTERVAL = 60.0


class RepeatFilter(logging.Filter):
    """Passes a record unless one with the same logger, level, message template and exception type passed
    less than ``interval`` seconds ago; the next one to pass carries the count of those held back."""

    def __init__(self, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, str(record.msg), error)
        now = self._clock()
        with self._lock:
            passed_at, held = self._seen.get(key, (None, 0))
            if passed_at is not None and now - passed_at < self._interval:
                self._seen[key] = (passed_at, held + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 10_000:  # messages with ever-new templates must not grow this for ever
                self._seen = {key: (now, 0)}
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {now - passed_at:.0f} s]"
        return True


def install(interval: float = DEFAULT_INTERVAL) -> None:
    """Route the controller's own loggers to stderr beside uvicorn's, every handler behind one RepeatFilter."""
    repeat = RepeatFilter(interval)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    for name in ("", "uvicorn", "uvicorn.error"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(repeat)


class RepeatedError:
    """One condition a component keeps meeting (the database away): logged when it starts, then at most
    once per ``interval`` with a count, and once more when it clears."""

    def __init__(self, logger: logging.Logger, what: str, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._what = what
        self._interval = interval
        self._clock = clock
        self._since: float | None = None
        self._logged_at = 0.0
        self._count = 0

    def occurred(self, detail: str) -> None:
        now = self._clock()
        self._count += 1
        if self._since is None:
            self._since = self._logged_at = now
            self._log.error("%s: %s", self._what, detail)
        elif now - self._logged_at >= self._interval:
            self._logged_at = now
            self._log.error("%s for %.0f s now (%d times): %s", self._what, now - self._since, self._count, detail)

    def recovered(self) -> None:
        if self._since is not None:
            self._log.warning("%s: recovered after %.0f s (%d failures)", self._what, self._clock() - self._since,
                              self._count)
            self._since, self._count = None, 0
