"""Domain exceptions. Library code raises these; only ``cli.py`` turns them into exit codes.

Every message is one line that says what was expected, what came, and how to fix it.
"""

from __future__ import annotations


class IsgameError(Exception):
    """Base class of every error a user can cause (bad input, bad option, missing file)."""


class InvalidInputError(IsgameError, ValueError):
    """A value has the right type but is not acceptable (shape, range, NaN, ...)."""


class InvalidTypeError(IsgameError, TypeError):
    """A value has the wrong type (e.g. an object array where numbers were expected)."""


class SourceNotFoundError(IsgameError, FileNotFoundError):
    """A file, folder or built-in source named by the user does not exist."""
