"""Out-of-hours compliance: which devices are awake when the policy in force says they should be off.

Pure (the metrics helper supplies the policy set, each device's last known state and ``now``). The
engine is asked once per distinct device context, not once per device, so a scrape of a 100,000-device
estate stays cheap. Devices whose policy is in observe mode count too: observe is how a school finds
out how far it is from compliance before anything is switched on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from controller.policy.calendar import Calendar
from controller.policy.engine import decide
from controller.policy.model import DeviceFacts, Intent, Policy
from controller.policy.plan import context_key, distinctions

AWAKE_STATES = frozenset({"active", "idle"})


def out_of_hours_on(policies: Sequence[Policy], calendars: Mapping[str, Calendar],
                    devices: Iterable[tuple[DeviceFacts, str]], now: datetime) -> dict[tuple[str, str], int]:
    """Awake devices in a power-down window, counted by (site, device class); only non-zero counts appear."""
    named = distinctions(policies)
    intents: dict[tuple, Intent] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for device, state in devices:
        if state not in AWAKE_STATES:
            continue
        key = context_key(device, named)
        intent = intents.get(key)
        if intent is None:
            intent = intents[key] = decide(policies, calendars, device, now).intent
        if intent is Intent.POWER_DOWN:
            counts[(device.site, device.device_class)] += 1
    return dict(counts)
