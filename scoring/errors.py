"""Domain exceptions. Library code raises these; only ``cli.py`` turns them into exit codes.

Every message is one line that says what was expected, what came, and how to fix it.

Messages name the caller's parameters with :func:`parameter`, so each audience reads its own
spelling: ``str(error)`` writes ``splits=20`` for a Python caller, and the command line renders the
same error with its flag, ``--splits 20`` (:meth:`IsgameError.render`)::

    raise InvalidInputError(f"N = 10 is fewer than {parameter('splits', 20)}; use {parameter('splits', 10)} or fewer")

A remedy that is a whole command names both spellings with :func:`remedy`: the command line shows the
command (``isgame train-digits --seed 0``), a Python caller the call (``isgame.train_digits_cnn(0)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A parameter reference inside a message: \x1fNAME\x1f or \x1fNAME=VALUE\x1f (unit separators never occur in text).
_MARK = "\x1f"
_REFERENCE = re.compile(f"{_MARK}(\\w+)(?:=([^{_MARK}]*))?{_MARK}")
_NO_VALUE = object()
# A remedy: \x1eCOMMAND\x1dCALL\x1e, the command line's and Python's spelling of one fix.
_REMEDY = re.compile("\x1e([^\x1d\x1e]*)\x1d([^\x1e]*)\x1e")


def parameter(name: str, value: object = _NO_VALUE) -> str:
    """A reference to the caller's parameter ``name`` (with an example ``value``) inside an error message."""
    return f"{_MARK}{name}{_MARK}" if value is _NO_VALUE else f"{_MARK}{name}={value}{_MARK}"


def remedy(command: str, call: str) -> str:
    """A fix that is a whole command inside an error message: ``command`` at the command line (``isgame stats
    save``), ``call`` for a Python caller (``isgame.save_stats(...)``)."""
    return f"\x1e{command}\x1d{call}\x1e"


def python_spelling(name: str, value: str | None) -> str:
    """``splits=20``, or ``splits`` without a value."""
    return name if value is None else f"{name}={value}"


class IsgameError(Exception):
    """Base class of every error a user can cause (bad input, bad option, missing file)."""

    def render(self, spell: Callable[[str, str | None], str] = python_spelling, *, commands: bool = False) -> str:
        """The message with every parameter reference written by ``spell(name, value or None)``, and every
        :func:`remedy` as its command (``commands``: the command line) or as its Python call."""
        text = _REMEDY.sub(lambda match: match[1] if commands else match[2], super().__str__())
        return _REFERENCE.sub(lambda match: spell(match[1], match[2]), text)

    def __str__(self) -> str:
        return self.render()


class InvalidInputError(IsgameError, ValueError):
    """A value has the right type but is not acceptable (shape, range, NaN, ...)."""


class InvalidTypeError(IsgameError, TypeError):
    """A value has the wrong type (e.g. an object array where numbers were expected)."""


class SourceNotFoundError(IsgameError, FileNotFoundError):
    """A file, folder or built-in source named by the user does not exist."""
