"""The ``caretaker-agent`` program (and ``python -m agent``).

``session-helper`` goes straight to the helper, before anything the service needs is imported: a
helper runs in every user's session and must stay small, while ``agent.cli`` brings in TLS, SQLite
and psutil. Every other command is agent.cli's.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

HELPER = "session-helper"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [HELPER]:
        from agent.session.helper import main as helper

        return helper(args[1:])
    from agent.cli import main as agent

    return agent(args)
