"""Domain exceptions. Library code raises these; only ``cli.py`` turns them into exit codes.

Every message is one line that says what was expected, what came, and how to fix it.

Messages name the caller's parameters with :func:`parameter`, so each audience reads its own
spelling: ``str(error)`` writes ``splits=20`` for a Python caller, and the command line renders the
same error with its flag, ``--splits 20`` (:meth:`IsgameError.render`)::

    raise InvalidInputError(f"N = 10 is fewer than {parameter('splits', 20)}; use {parameter('splits', 10)} or fewer")
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A parameter reference inside a message: \x1fNAME\x1f or \x1fNAME=VALUE\x1f (unit separators never occur in text).
_MARK = "\x1f"
_REFERENCE = re.compile(f"{_MARK}(\\w+)(?:=([^{_MARK}]*))?{_MARK}")
_NO_VALUE = object()


def parameter(name: str, value: object = _NO_VALUE) -> str:
    """A reference to the caller's parameter ``name`` (with an example ``value``) inside an error message."""
    return f"{_MARK}{name}{_MARK}" if value is _NO_VALUE else f"{_MARK}{name}={value}{_MARK}"


def python_spelling(name: str, value: str | None) -> str:
    """``splits=20``, or ``splits`` without a value."""
    return name if value is None else f"{name}={value}"


class IsgameError(Exception):
    """Base class of every error a user can cause (bad input, bad option, missing file)."""

    def render(self, spell: Callable[[str, str | None], str] = python_spelling) -> str:
        """The message with every parameter reference written by ``spell(name, value or None)``."""
        return _REFERENCE.sub(lambda match: spell(match[1], match[2]), super().__str__())

    def __str__(self) -> str:
        return self.render()


class InvalidInputError(IsgameError, ValueError):
    """A value has the right type but is not acceptable (shape, range, NaN, ...)."""


class InvalidTypeError(IsgameError, TypeError):
    """A value has the wrong type (e.g. an object array where numbers were expected)."""


class SourceNotFoundError(IsgameError, FileNotFoundError):
    """A file, folder or built-in source named by the user does not exist."""
