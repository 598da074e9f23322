"""Collectors: one module per source of facts about the machine.

Each module has ``supported(root) -> bool``, ``collect(root) -> <frozen dataclass>`` and
``PROVIDES``, the type ``collect`` returns, by which the sampler asks for it. They only read; the
sampler decides what to make of the readings and nothing here sends anything.
"""

from __future__ import annotations

from agent.collectors import activity, battery, insomnia, inventory, rapl, updates, wake

COLLECTORS = (inventory, activity, rapl, battery, wake, insomnia, updates)
