"""Plan a school day: compile the power schedule of 100,000 devices, target at most 2 s.

    .venv/bin/python bench/plan_day.py [--devices 100000] [--naive-sample 500] [--repeat 5] [--day 2026-02-09]

The estate is the example policies in policies/ (a primary, a secondary with exam windows, rooms and
signage, an FE college, always-on servers) over their three sites plus 97 more schools that only the
servers policy names, 1,000 devices each: desktops and laptops in rooms (some named by the policies),
a few tagged servers and signage. `plan` compiles once per distinct context (the facts some policy
names) and shares the result; the peer is the naive way, `compile_schedule` for every device, timed
on a sample of ``--naive-sample`` devices and scaled (running it on all would take minutes). Both are
timed in this run, on the same devices, after one warm-up compile (the first pays for imports and the
holidays library's tables). The shared schedules are checked equal to the naive ones on the sample.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date
from datetime import time as wall
from pathlib import Path

from controller.policy import loader
from controller.policy.model import DeviceFacts
from controller.policy.plan import context_key, distinctions, plan
from controller.policy.schedule import compile_schedule
from controller.policy.walltime import instant, zone

ROOMS = ("ICT Suite", "Library", "E12", "Art Suite", "Sports Hall", "Reprographics", "Room 1", "Room 2", "Room 3",
         "Room 4", "Room 5", "Science Lab", "Music", "Office", "Staff Room")
NAMED_SITES = ("Hillside Primary", "Northgate Academy", "Riverside College")


def estate(count: int, seed: int = 7) -> list[DeviceFacts]:
    rng = random.Random(seed)
    sites = [*NAMED_SITES, *(f"School {n:03d}" for n in range(1, 98))]
    devices = []
    for n in range(count):
        site = sites[n // 1000 % len(sites)]
        roll = rng.random()
        device_class, tags = ("server", ("server",)) if roll < 0.01 else ("desktop", ("signage",)) if roll < 0.02 \
            else ("laptop", ()) if roll < 0.3 else ("desktop", ())
        devices.append(DeviceFacts(str(n + 1), f"PC{n + 1:06d}", site, device_class, tags, rng.choice(ROOMS)))
    return devices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="plans timed; the median is reported")
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 2, 9), help="a Monday in term")
    args = parser.parse_args()
    policy_set = loader.load([Path(__file__).resolve().parent.parent / "policies"])
    devices = estate(args.devices)
    start = instant(args.day, wall(0), zone("Europe/London"))
    compile_schedule(policy_set.policies, policy_set.calendars, devices[0], start, 1)  # warm-up

    timings = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        planned = plan(policy_set.policies, policy_set.calendars, devices, start, 1)
        timings.append(time.perf_counter() - began)
    shared_seconds = statistics.median(timings)
    contexts = len({context_key(d, distinctions(policy_set.policies)) for d in devices})

    sample = random.Random(1).sample(devices, min(args.naive_sample, len(devices)))
    began = time.perf_counter()
    naive = {d.device_id: compile_schedule(policy_set.policies, policy_set.calendars, d, start, 1) for d in sample}
    naive_per_device = (time.perf_counter() - began) / len(sample)
    mismatches = sum(planned[device_id] != schedule for device_id, schedule in naive.items())

    naive_seconds = naive_per_device * len(devices)
    print(f"devices                 {len(devices):,} at {len(NAMED_SITES) + 97} sites; {contexts:,} distinct contexts")
    print(f"plan (shared compile)   {shared_seconds:.2f} s median of {len(timings)} (min {min(timings):.2f}, max "
          f"{max(timings):.2f}; {shared_seconds / len(devices) * 1e6:.1f} µs/device)  target <= 2 s: "
          f"{'met' if shared_seconds <= 2 else 'NOT met'}")
    print(f"naive per-device        {naive_per_device * 1e3:.2f} ms/device on {len(sample)} devices -> "
          f"{naive_seconds:.0f} s for all")
    print(f"ratio naive / shared    {naive_seconds / shared_seconds:.0f}x")
    print(f"sample schedules equal  {len(sample) - mismatches} of {len(sample)}")
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
