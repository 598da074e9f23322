"""The ``caretaker-agent`` program (and ``python -m agent``).

``session-helper`` goes straight to the helper, before anything the service needs is imported: a
helper runs in every user's session and must stay small, while ``agent.cli`` brings in TLS, SQLite
and psutil. Every other command is agent.cli's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

HELPER = "session-helper"


def helper_options() -> argparse.ArgumentParser:
    """The helper's options, here so that ``caretaker-agent --help`` (agent.cli) lists them without
    importing the helper, and the helper parses them without importing agent.cli."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--session-address", metavar="ADDRESS",
                        help="the agent's session channel (default: this OS's, e.g. /run/caretaker-agent/session.sock)")
    parser.add_argument("--dialog-command", metavar="CMD",
                        help="show warnings with CMD (given --title, --message, --seconds and --postpone-label; "
                             "it prints 'postpone' if the person chose to) instead of the built-in window")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [HELPER]:
        from agent.session.helper import main as helper

        return helper(args[1:])
    from agent.cli import main as agent

    return agent(args)
