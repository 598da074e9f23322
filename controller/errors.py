"""The one kind of error every surface shows the same way: a refusal a person can act on.

Domain exceptions that mean "you asked for something the rules refuse, or that is not there" derive from
:class:`DomainError` as well as their usual base, so the CLI prints any of them as one line on stderr with
exit status 2 (controller/cli/common.py), without each command listing them.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal in one line of words: no traceback, no usage box."""
