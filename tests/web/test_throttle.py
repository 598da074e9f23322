"""Sign-in throttling as a guesser meets it: slower and slower per address, bounded overall, never a lockout."""

from __future__ import annotations

import asyncio

import pytest

from controller.web.throttle import Busy, SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_failure_past_the_free_ones_doubles_the_wait_of_that_address_only():
    clock = Clock()
    throttle = SignInThrottle(free_failures=3, base_delay=1.0, max_delay=60.0, clock=clock)
    waits = []
    for _ in range(10):
        throttle.failed("127.0.0.1")
        waits.append(throttle.wait("127.0.0.1"))
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert throttle.wait("127.0.0.2") == 0
    clock.now += 30
    assert throttle.wait("127.0.0.1") == 30


def test_a_success_or_a_quiet_quarter_hour_clears_an_address():
    clock = Clock()
    throttle = SignInThrottle(free_failures=1, forget_after=900, clock=clock)
    for _ in range(4):
        throttle.failed("a")
        throttle.failed("b")
    throttle.succeeded("a")
    assert throttle.wait("a") == 0 and throttle.wait("b") > 0
    clock.now += 901
    assert throttle.wait("b") == 0


def test_many_addresses_together_are_spaced_out_once_past_the_global_rate():
    clock = Clock()
    throttle = SignInThrottle(free_failures=100, global_failures_per_minute=60, clock=clock)
    for i in range(59):
        throttle.failed(f"10.0.{i // 250}.{i % 250}")
    assert throttle.wait("192.0.2.1") == 0
    throttle.failed("10.9.9.9")
    assert throttle.wait("192.0.2.1") == pytest.approx(1.0)  # one attempt a second from anywhere
    clock.now += 61
    assert throttle.wait("192.0.2.1") == 0


def test_password_checks_queue_for_a_few_slots_and_a_flood_is_turned_away():
    async def scenario() -> tuple[int, int]:
        throttle = SignInThrottle(hash_slots=1, queue_limit=2)
        running = peak = 0
        busy = 0

        async def attempt() -> None:
            nonlocal running, peak, busy
            try:
                async with throttle.hashing():
                    running += 1
                    peak = max(peak, running)
                    await asyncio.sleep(0.01)
                    running -= 1
            except Busy:
                busy += 1

        await asyncio.gather(*(attempt() for _ in range(10)))
        return peak, busy

    peak, busy = asyncio.run(scenario())
    assert peak == 1 and busy == 7  # one checking, two waiting, the rest told to come back
