"""The exception hierarchy.

Every error a user can cause is a :class:`BflyError` whose message is one line naming the problem
and the fix. The CLI turns it into that line on stderr and exit code 2; :class:`CheckFailed` (a
tolerance missed, a file whose claims do not reproduce) becomes exit code 1. Anything else is a bug
and is allowed to show a traceback.
"""

from __future__ import annotations


class BflyError(Exception):
    """Bad usage or bad input: the CLI prints the message and exits with code 2."""

    exit_code = 2


class CheckFailed(BflyError):
    """A requested check did not pass (``--tol`` missed, verification failed): exit code 1."""

    exit_code = 1


class FormatError(BflyError):
    """A factor file that is not a valid bfly file (wrong format, version, shapes, values)."""
