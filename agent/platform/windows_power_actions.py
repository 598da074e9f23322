"""Windows: ``shutdown`` with a last minute's notice in Windows' own dialog, sleep via powrprof.

``shutdown /s /t N /c`` shows Windows' own countdown with the message and can be aborted with
``shutdown /a``; the agent gives it a one-minute grace so the last notice is on screen when it acts.
``rundll32 powrprof.dll,SetSuspendState 0,1,0`` sleeps (it hibernates instead where hibernation is
on, which is Windows' choice, not ours); ``shutdown /h`` hibernates.
"""

from __future__ import annotations

from agent.platform.power_actions import Verb

GRACE_SECONDS = 60


def power_command(verb: Verb, message: str) -> list[str]:
    if verb is Verb.SHUTDOWN:
        return ["shutdown", "/s", "/t", str(GRACE_SECONDS), "/c", message[:512], "/d", "p:0:0"]
    if verb is Verb.SLEEP:
        return ["rundll32.exe", "powrprof.dll,SetSuspendState", "0,1,0"]
    return ["shutdown", "/h"]
