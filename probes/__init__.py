"""What the score cannot see: probes, the robustness matrix and the leaderboard.

``isgame.probes.robustness_leaderboard`` is imported on first use (it pulls in torch and the matrix).
"""

from __future__ import annotations

from importlib import import_module

#: the library functions importable from ``isgame.probes`` itself
_API = {"robustness_leaderboard": "isgame.probes.leaderboard", "robustness_matrix": "isgame.probes.matrix"}
__all__ = list(_API)


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'isgame.probes' has no attribute {name!r}")
    return getattr(import_module(module), name)
