"""Plug-ins: metrics and games from outside the package.

Three ways in, all ending in :func:`~isgame.scoring.metrics.registry.register_metric` or
:func:`~isgame.probes.matrix.games.register_game` calls:

* Python: call them (``isgame.register_metric``, ``isgame.register_game``) before running a command's function;
* a module named on the command line (``load_plugin``): a module name importable from the working folder, as
  ``module:function`` classifiers are found, or a path to a ``.py`` file; importing it registers what it holds;
* an installed distribution that declares an entry point in the group ``isgame.metrics`` or ``isgame.games``
  (:func:`load_installed_plugins`); loading the entry point imports its module (and, when it names a function
  taking no arguments, calls it). As with pytest's plug-ins, a package joins by being installed::

      [project.entry-points."isgame.metrics"]
      mean-shift = "my_package.metrics"

An installed plug-in that fails to load is left out with a note (one broken package must not stop every
command); a module named on the command line that fails is an error.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.notes import Note

#: the entry-point groups isgame reads
ENTRY_POINT_GROUPS = ("isgame.metrics", "isgame.games")
_loaded: dict[str, str | None] = {}  # "group:name" -> None (loaded) or the reason it failed


def load_plugin(spec: str) -> ModuleType:
    """Import the module ``spec`` (a dotted name, found from the working folder first, or a ``.py`` file), which
    registers its metrics and games; a module already imported is not imported again."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInputError(f"{parameter('plugin')} must name a module or a .py file, got {spec!r}")
    path = Path(spec)
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise InvalidInputError(f"{parameter('plugin')} {spec}: no such file; pass a .py file or a module "
                                        "name importable from the working folder")
            # One module per file: two plug-ins both called metrics.py in other folders must not share a name.
            digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:8]
            name = f"isgame_plugin_{path.stem}_{digest}"
            if name in sys.modules:
                return sys.modules[name]
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            return module
        working = str(Path.cwd())
        if working not in sys.path:
            sys.path.insert(0, working)
        return importlib.import_module(spec)
    except InvalidInputError:
        raise
    except ModuleNotFoundError as error:
        raise InvalidInputError(f"{parameter('plugin')} {spec}: module {error.name!r} not found; pass a module "
                                "importable from the working folder, or a path to a .py file") from None
    except Exception as error:  # a plug-in's own error, reported in one line
        raise InvalidInputError(f"{parameter('plugin')} {spec} failed to load: {type(error).__name__}: "
                                f"{str(error).splitlines()[0] if str(error) else ''}") from None


def load_plugins(specs: list[str] | tuple[str, ...] | None) -> list[ModuleType]:
    """:func:`load_plugin` of each of ``specs`` (None: none), after the installed plug-ins."""
    load_installed_plugins()
    return [load_plugin(spec) for spec in specs or ()]


def load_installed_plugins() -> list[Note]:
    """Load every entry point of :data:`ENTRY_POINT_GROUPS` once per process; a failure is a note, not an error.
    Returns the notes of the failures so far."""
    for group in ENTRY_POINT_GROUPS:
        for point in entry_points(group=group):
            key = f"{group}:{point.name}"
            if key in _loaded:
                continue
            _loaded[key] = None
            try:
                target = point.load()
                if inspect.isfunction(target) and not inspect.signature(target).parameters:
                    target()
            except Exception as error:  # an installed package's failure must not stop the command
                _loaded[key] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return plugin_notes()


def plugin_notes() -> list[Note]:
    """One note per installed plug-in that failed to load."""
    return [Note(f"plug-in {key} was not loaded: {reason}") for key, reason in _loaded.items() if reason is not None]
