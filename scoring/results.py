"""What every result's ``to_dict()`` shares: its fields as JSON-ready values, older key names, provenance.

A result is a frozen dataclass. :class:`FieldsAsDict` gives it ``to_dict()``: its fields, with numpy numbers
and arrays turned into Python ones (so ``json.dumps`` takes them whatever a metric returned), and each
attribute named in :attr:`FieldsAsDict.published` also written under its older, published JSON key
(:data:`PUBLISHED_KEYS`; those keys are deprecated and removed in isgame 0.4).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

#: attribute -> the older JSON key it is also written under (probe rows wrote ``inception_score``; the score's
#: own JSON has always written ``is_mean``); deprecated, removed in isgame 0.4
PUBLISHED_KEYS = {"is_mean": "inception_score", "is_std": "inception_score_std",
                  "improved_is": "exp_mutual_information"}


def json_ready(value: object) -> object:
    """``value`` with numpy scalars as Python numbers and numpy arrays, tuples and nested containers as lists and
    dicts, so that ``json.dumps`` accepts it."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def with_published_keys(values: dict[str, object], attributes: tuple[str, ...]) -> dict[str, object]:
    """``values`` with each of ``attributes`` also under its published key (:data:`PUBLISHED_KEYS`), right after it."""
    out: dict[str, object] = {}
    for key, value in values.items():
        out[key] = value
        if key in attributes:
            out[PUBLISHED_KEYS[key]] = value
    return out


def with_provenance(payload: dict[str, object], provenance: dict[str, object] | None) -> dict[str, object]:
    """``payload`` with a ``provenance`` block where the result has one."""
    return payload if provenance is None else {**payload, "provenance": provenance}


class FieldsAsDict:
    """Mixin of a result dataclass: ``to_dict()`` is its fields, JSON-ready, minus :attr:`omitted` (tensors for
    figures), with :attr:`published` attributes also under their published keys."""

    omitted: ClassVar[tuple[str, ...]] = ()
    published: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, object]:
        fields = {key: value for key, value in vars(self).items() if key not in self.omitted}
        return json_ready(with_published_keys(fields, self.published))
