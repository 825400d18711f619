"""``module:function`` classifiers are found in the working folder, which is not left on sys.path."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from isgame.scoring.classifiers import load_classifier
from isgame.scoring.errors import InvalidInputError

FACTORY = textwrap.dedent("""
    import torch

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5))
""")


def test_a_factory_in_the_working_folder_loads_without_pythonpath(tmp_path):
    (tmp_path / "herenet.py").write_text(FACTORY)
    program = textwrap.dedent("""
        import os, sys
        assert os.getcwd() not in sys.path and "" not in sys.path, sys.path   # python -P: nothing added
        from isgame.scoring.classifiers import load_classifier
        classifier = load_classifier("herenet:make?size=8x8&channels=1")
        print(classifier.num_classes, os.getcwd() in sys.path)
    """)
    env = {key: value for key, value in __import__("os").environ.items() if key != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-P", "-c", program], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["5", "False"]


def test_the_working_folder_is_on_sys_path_only_for_that_import(tmp_path, monkeypatch):
    (tmp_path / "herenet2.py").write_text(FACTORY)
    (tmp_path / "notyet.py").write_text("VALUE = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "herenet2", raising=False)
    before = list(sys.path)
    assert load_classifier("herenet2:make?size=8x8&channels=1").num_classes == 5
    assert sys.path == before
    with pytest.raises(ModuleNotFoundError):
        __import__("notyet")  # the folder's other modules are not importable afterwards


def test_a_missing_factory_module_still_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match="cannot load classifier factory 'nowhere_net:make'.*working folder"):
        load_classifier("nowhere_net:make?size=8x8")
