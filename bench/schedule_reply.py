"""What the power schedule adds to each ingest reply, against the reply itself.

    .venv/bin/python bench/schedule_reply.py [--replies 200000]

bench/ingest.py measures whole requests, but on a shared 2-core machine its run-to-run noise is well
above the 5% an ingest change may cost, so this measures the added work directly: the planner's
``reply`` per request (a cached schedule; the policy directory looked at every 2 s, amortised) with no
policies, with policies and an agent that holds its schedule, and with an old agent that never says
which it holds; and serialising the reply with and without the schedule, the peer in the same run.
SQLite in a temporary directory, the example primary policy, one device.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import pydantic

from agent.protocol import BatchAck
from controller import migrate
from controller.db import make_engine, session_scope
from controller.policy.dispatch import SchedulePlanner
from controller.policy.store import PolicyStore
from controller.register.models import Device, Site

REPO = Path(__file__).resolve().parent.parent


async def per_reply(planner: SchedulePlanner, held: str | None, count: int) -> float:
    await planner.reply(1, None)
    began = time.perf_counter()
    for _ in range(count):
        await planner.reply(1, held)
    return (time.perf_counter() - began) / count * 1e6


def per_dump(adapter: pydantic.TypeAdapter, ack: BatchAck, count: int) -> float:
    began = time.perf_counter()
    for _ in range(count):
        adapter.dump_json(ack)
    return (time.perf_counter() - began) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=200_000)
    count = parser.parse_args().replies
    directory = Path(tempfile.mkdtemp())
    try:
        engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
        migrate.upgrade(engine)
        with session_scope(engine) as session:
            site = Site(name="Hillside Primary")
            session.add(site)
            session.flush()
            session.add(Device(site_id=site.id, hostname="HILL-R01-PC01", device_class="desktop"))
        policies = directory / "policies"
        policies.mkdir()
        shutil.copy(REPO / "policies" / "primary.yaml", policies)
        shutil.copytree(REPO / "policies" / "calendars", policies / "calendars")
        none = SchedulePlanner(PolicyStore(directory / "absent", engine), engine)
        planner = SchedulePlanner(PolicyStore(policies, engine), engine)
        schedule = asyncio.run(planner.reply(1, None))
        print(f"planner.reply, no policies            {asyncio.run(per_reply(none, None, count)):6.2f} µs")
        holds = asyncio.run(per_reply(planner, schedule.version, count))
        print(f"planner.reply, agent holds schedule   {holds:6.2f} µs")
        print(f"planner.reply, old agent              {asyncio.run(per_reply(planner, None, count)):6.2f} µs")
        adapter = pydantic.TypeAdapter(BatchAck)
        plain, carrying = BatchAck((1,), (), 300), BatchAck((1,), (), 300, schedule=schedule)
        bare, full = per_dump(adapter, plain, count // 10), per_dump(adapter, carrying, count // 10)
        print(f"serialise reply without schedule      {bare:6.2f} µs  {len(adapter.dump_json(plain))} bytes")
        print(f"serialise reply with schedule         {full:6.2f} µs  {len(adapter.dump_json(carrying))} bytes "
              f"({len(schedule.windows)} windows); ratio {full / bare:.0f}x, sent only when it changes")
        engine.dispose()
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
