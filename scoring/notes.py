"""Notes: one-line remarks about how a source was read (files skipped, a range detected, values clipped).

A :class:`Note` is a ``str`` that names the caller's parameters the Python way (``n=100000``), like
an error message (:mod:`isgame.scoring.errors`); :meth:`Note.render` spells them another way, so
the command line can write ``--n 100000``.
"""

from __future__ import annotations

from collections.abc import Callable

from isgame.scoring.errors import IsgameError, python_spelling


class Note(str):
    """A note whose text may hold :func:`~isgame.scoring.errors.parameter` references."""

    raw: str

    def __new__(cls, text: str) -> Note:
        note = super().__new__(cls, IsgameError(text).render())
        note.raw = text
        return note

    def render(self, spell: Callable[[str, str | None], str] = python_spelling, *, commands: bool = False) -> str:
        """The note with every parameter reference written by ``spell(name, value or None)`` (and every remedy as
        its command when ``commands``)."""
        return IsgameError(self.raw).render(spell, commands=commands)
