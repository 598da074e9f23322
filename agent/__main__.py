"""``python -m agent``, the same as ``caretaker-agent``: handy where the scripts directory is not on PATH."""

from agent.cli import main

raise SystemExit(main())
