"""Modules that moved in isgame 0.3, importable under their old names until 0.4; renamed parameters warn too.

``scoring/`` was split by job (``metrics/``, ``sources/``, ``runtime/``) and the robustness matrix became the
package ``probes/matrix/``. ``import isgame.scoring.fid`` still works and gives the very module
``isgame.scoring.metrics.fid`` (one object, so patches and ``isinstance`` agree), with a
:class:`DeprecationWarning` naming the new path. The old names are removed in isgame :data:`REMOVAL_VERSION`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: the version that drops the old module names
REMOVAL_VERSION = "0.4"

_METRICS = ("accumulator", "streaming", "score_result", "inception_score", "entropy", "dialects", "fid", "kid", "prdc",
            "vendi", "sliced_wasserstein", "rbf_mmd", "fld", "wavelet_fd", "infinity", "feature_arrays",
            "sample_order", "validation")
_SOURCES = ("samples", "image_source", "image_files", "image_arrays", "digits_data", "preprocessing", "fingerprint",
            "stats_file")
_RUNTIME = ("progress", "atomic_io", "distributed", "threads", "prefetch")

#: old dotted name -> new dotted name
MOVED: dict[str, str] = {
    **{f"isgame.scoring.{name}": f"isgame.scoring.metrics.{name}" for name in _METRICS},
    **{f"isgame.scoring.{name}": f"isgame.scoring.sources.{name}" for name in _SOURCES},
    **{f"isgame.scoring.{name}": f"isgame.scoring.runtime.{name}" for name in _RUNTIME},
    "isgame.probes.copy_detectors": "isgame.scoring.metrics.copy_detectors",
    "isgame.probes.games": "isgame.probes.matrix.games",
    "isgame.probes.matrix_metrics": "isgame.probes.matrix.measurements",
    "isgame.probes.matrix_significance": "isgame.probes.matrix.significance",
}


class _AliasLoader(importlib.abc.Loader):
    """Hands out the module under its new name; the import system then files it under the old name too."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def create_module(self, spec):
        warnings.warn(f"{self.old} moved to {self.new}; the old name is removed in isgame {REMOVAL_VERSION}",
                      DeprecationWarning, stacklevel=3)
        module = importlib.import_module(self.new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # The import system stamped the old name's spec on the module; it keeps its own.
        module.__spec__ = self._spec


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        return None if new is None else importlib.util.spec_from_loader(fullname, _AliasLoader(fullname, new))


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """A :class:`DeprecationWarning` for a parameter or option used under its older name ``old``."""
    warnings.warn(f"{old} is deprecated; use {new} (the old name is removed in isgame {REMOVAL_VERSION})",
                  DeprecationWarning, stacklevel=stacklevel)


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (``import isgame`` calls this)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedModuleFinder())
