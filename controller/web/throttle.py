"""Sign-in throttling that slows a guesser without handing anyone a way to lock a colleague out.

Locking a named account after N failures lets anyone who knows a network manager's name keep them
out of the console. So nothing here is keyed by account. Instead:

* **per source address**, the first ``free_failures`` failures cost nothing; after that each failure
  doubles the wait before that address may try again (1 s, 2 s, 4 s … up to ``max_delay``), and a
  success, or ``forget_after`` without failures, clears it. A guessing script gets a handful of tries
  per quarter hour; the person at another desk is not affected;
* **globally**, failures beyond ``global_failures_per_minute`` across all addresses (a botnet) space
  every further attempt out, so the rate of guesses stays bounded whatever the number of addresses;
* **password hashing** (argon2, ~0.1 s of a core each, by design) runs in at most ``hash_slots`` threads
  at once, with at most ``queue_limit`` waiting, so a flood of sign-ins cannot take the CPU from agent
  ingest; beyond that the answer is 429 at once.

A refused attempt costs no hash. State is per process: each replica throttles what reaches it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass


class Busy(Exception):
    """Too many sign-ins are being checked at once: try again in a moment."""


@dataclass
class _Source:
    failures: int
    last_failure: float


class SignInThrottle:
    def __init__(self, free_failures: int = 5, base_delay: float = 1.0, max_delay: float = 900.0,
                 forget_after: float = 900.0, global_failures_per_minute: int = 120, hash_slots: int = 2,
                 queue_limit: int = 16, max_sources: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._free = free_failures
        self._base = base_delay
        self._max = max_delay
        self._forget = forget_after
        self._global = global_failures_per_minute
        self._clock = clock
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self._max_sources = max_sources
        self._recent: deque[float] = deque()  # times of failures in the last minute, every source
        self._slots = asyncio.Semaphore(hash_slots)
        self._queue_limit = queue_limit
        self._waiting = 0

    def wait(self, source: str) -> float:
        """Seconds before ``source`` may try to sign in (0: now)."""
        now = self._clock()
        own = 0.0
        entry = self._sources.get(source)
        if entry is not None:
            if now - entry.last_failure > self._forget:
                del self._sources[source]
            elif entry.failures >= self._free:
                delay = min(self._max, self._base * 2 ** (entry.failures - self._free))
                own = entry.last_failure + delay - now
        return max(own, self._global_wait(now), 0.0)

    def _global_wait(self, now: float) -> float:
        while self._recent and now - self._recent[0] > 60:
            self._recent.popleft()
        if len(self._recent) < self._global:
            return 0.0
        return self._recent[-1] + 60 / self._global - now  # one more attempt per 1/limit of a minute

    def failed(self, source: str) -> None:
        now = self._clock()
        entry = self._sources.pop(source, None) or _Source(0, now)
        entry.failures += 1
        entry.last_failure = now
        self._sources[source] = entry  # most recent last, so the oldest are dropped first
        while len(self._sources) > self._max_sources:
            self._sources.popitem(last=False)
        self._recent.append(now)

    def succeeded(self, source: str) -> None:
        self._sources.pop(source, None)

    @asynccontextmanager
    async def hashing(self) -> AsyncIterator[None]:
        """Hold one of the hashing slots for a password check; Busy if too many are queued already."""
        if self._waiting >= self._queue_limit:
            raise Busy
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
