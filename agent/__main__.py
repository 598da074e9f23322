"""``python -m agent``, the same as ``caretaker-agent``: handy where the scripts directory is not on PATH
(and how Windows starts the service and, with pythonw.exe, the session helper)."""

from agent.entry import main

raise SystemExit(main())
