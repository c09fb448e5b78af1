"""The library's user-facing error type.

Every mistake a user can make (a bad config, a bad data path, a bad checkpoint) raises a subclass of
:class:`HamjepaError` (itself a ``ValueError``) whose message is one line naming the problem and the fix.
The CLI prints that line instead of a traceback.
"""

from __future__ import annotations


class HamjepaError(ValueError):
    """Base class of user-facing errors (one-line messages)."""


class CheckpointError(HamjepaError):
    """A checkpoint that cannot be used: missing, truncated, unsafe, or from another config."""
