"""Two controllers on one PostgreSQL given the same agents' reports at once, as when agents retry through
the balancer while their first try is still being stored: each report is stored and counted once, and
acknowledged as new by exactly one of them (the other calls it a duplicate)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from agent.protocol import PROTOCOL_VERSION, ReportBatch
from controller.db import make_engine
from controller.register.ingest import AgentIdentity, IngestWriter
from controller.register.models import Agent, EnergyBucket
from controller.register.models import Report as ReportRow
from controller.timeutil import utcnow
from tests.controller.power import builders
from tests.factories import consecutive

AGENTS = 12
ROUNDS = 4
PER_BATCH = 3


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # an SQLite controller is alone
def test_the_same_batches_through_two_replicas_at_once_are_stored_and_counted_once(engine, database_url):
    began = utcnow() - timedelta(hours=2)
    with Session(engine) as session:
        school = builders.site(session)
        agents = []
        for n in range(AGENTS):
            pc = builders.device(session, school, f"PC{n}", f"00:1a:2b:3c:4d:{n:02x}", f"10.40.0.{n + 10}")
            builders.agent(session, pc, f"agent-{n}", began)  # its seq 1 stored, ending at ``began``
            agents.append(AgentIdentity(f"agent-{n}", pc.id, school.id))
        session.commit()
    other_engine = make_engine(database_url)
    replicas = [IngestWriter(engine, 300), IngestWriter(other_engine, 300)]
    acks: dict[str, list] = {agent.agent_id: [] for agent in agents}
    try:
        for round_ in range(ROUNDS):
            start = began + timedelta(seconds=300 * PER_BATCH * round_)
            reports = consecutive(2 + PER_BATCH * round_, PER_BATCH, start=start)
            futures = [(agent.agent_id, replica.submit(agent, ReportBatch(PROTOCOL_VERSION, tuple(reports))))
                       for agent in agents for replica in replicas]
            if round_ == 0:
                for replica in replicas:  # both start with every job queued: their first groups meet
                    replica.start()
            for agent_id, future in futures:
                acks[agent_id].append(future.result(timeout=60))
    finally:
        for replica in replicas:
            replica.stop()
        other_engine.dispose()

    sent = list(range(2, 2 + PER_BATCH * ROUNDS))
    for agent_id, answers in acks.items():
        accepted = sorted(seq for ack in answers for seq in ack.accepted)
        duplicate = sorted(seq for ack in answers for seq in ack.duplicate)
        assert (accepted, duplicate) == (sent, sent), agent_id
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(ReportRow)).one() == AGENTS * (1 + len(sent))
        joules = session.exec(select(func.sum(EnergyBucket.joules))).one()
        assert joules == pytest.approx(AGENTS * len(sent) * 300 * 45.0)
        counted = {(a.reports, a.last_seq) for a in session.exec(select(Agent)).all()}
    assert counted == {(1 + len(sent), sent[-1])}
