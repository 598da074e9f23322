"""The user's side of the machine: who is signed in, how long since they touched it, and their answer
to a power-down warning.

A service cannot see these itself (Windows runs it in session 0; a macOS or Linux daemon sits outside
every desktop), so a small *session helper* runs in each user's session and tells the service over a
local channel (a named pipe on Windows, a Unix socket elsewhere) that the OS authenticates: the
service learns from the kernel which user, and on Windows which session, each helper speaks for.

- wire.py: the messages on that channel (the helper imports it, so it stays small);
- view.py: the one rule that turns the OS's list of sessions and the helpers' answers into "idle for
  N seconds" or "unknown, and why";
- desk.py: the service's end (accepts helpers, keeps their answers, shows warnings);
- helper.py: the helper process; dialog.py: the warning window it opens.
"""
