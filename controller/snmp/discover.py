"""Finding the SNMP kit on a subnet and registering it.

Every address of the subnet is asked, concurrently and within the poller's bounds, with only the
credentials configured for it, in order, stopping at the first that answers (no spraying). Whatever
answers is registered (device and target) with its first reading, in one transaction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from controller.db import session_scope
from controller.errors import DomainError
from controller.register.models import Site
from controller.snmp.poller import Poller
from controller.snmp.readings import DevicePoll
from controller.snmp.store import register, save_poll, units_of

#: A /22: larger ranges are a typo or a scan, not one school's kit.
MAX_ADDRESSES = 1024


class SubnetError(ValueError, DomainError):
    pass


def addresses(subnet: str) -> list[str]:
    try:
        network = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise SubnetError(f"{subnet!r} is not a subnet like 10.20.5.0/24") from None
    if network.num_addresses > MAX_ADDRESSES + 2:
        raise SubnetError(f"{subnet} has {network.num_addresses} addresses; discover at most {MAX_ADDRESSES} "
                          "at a time")
    return [str(a) for a in network.hosts()]


@dataclass(frozen=True)
class Found:
    poll: DevicePoll
    target_id: int
    device_id: int
    members: tuple[int, ...] = ()  # the devices of a stack's further chassis


async def scan(poller: Poller, subnet: str, port: int = 161) -> list[DevicePoll]:
    """Polls of the addresses that answered, in address order."""
    polls = await poller.poll_many([(a, port) for a in addresses(subnet)])
    return [p for p in polls if p.ok]


def register_all(engine: Engine, polls: Sequence[DevicePoll], site: Site, actor: str) -> list[Found]:
    found = []
    with session_scope(engine) as session:
        site = session.merge(site)
        for poll in polls:
            target = register(session, poll, site, actor)
            save_poll(session, target, poll)
            found.append(Found(poll, target.id, target.device_id, tuple(units_of(session, target))))
    return found
