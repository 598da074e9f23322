"""Windows: ``shutdown`` with the warning in its own dialog, ``msg`` to every session, sleep via powrprof.

``shutdown /s /t N /c`` shows Windows' own countdown with the message and can be aborted with
``shutdown /a``; the agent gives it a one-minute grace so the last warning is on screen when it acts.
``rundll32 powrprof.dll,SetSuspendState 0,1,0`` sleeps (it hibernates instead where hibernation is
on, which is Windows' choice, not ours); ``shutdown /h`` hibernates.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.platform.power_actions import SessionUser, Verb

GRACE_SECONDS = 60


def power_command(verb: Verb, message: str) -> list[str]:
    if verb is Verb.SHUTDOWN:
        return ["shutdown", "/s", "/t", str(GRACE_SECONDS), "/c", message[:512], "/d", "p:0:0"]
    if verb is Verb.SLEEP:
        return ["rundll32.exe", "powrprof.dll,SetSuspendState", "0,1,0"]
    return ["shutdown", "/h"]


def warning_commands(title: str, message: str, minutes: int, users: Sequence[SessionUser]) -> list[list[str]]:
    return [["msg", "*", f"/TIME:{minutes * 60}", f"{title}: {message}"]]
