"""Shared fixtures: the shipped digits classifier, a CLI runner and one real audit run."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
from typer.testing import CliRunner

from isgame.scoring.classifiers import load_classifier


@pytest.fixture(scope="session")
def digits_classifier():
    return load_classifier("digits")


@pytest.fixture()
def cli():
    """Invoke the Typer app; returns the click-style result with separate stdout and stderr."""
    from isgame.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture(scope="session")
def audit_run(tmp_path_factory):
    """One real end-to-end ``isgame audit``, shared by every test that inspects its report."""
    from isgame.cli import app

    out = tmp_path_factory.mktemp("audit") / "run"
    # The fast profile (AUDIT_FAST_SAMPLES = 200 samples per section), two bootstrap draws per matrix cell and no
    # robust classifier keep the suite short; the full sizes, the bootstrap, the R-IS columns and the robust inflate
    # comparison are tested on their own.
    result = CliRunner().invoke(app, ["audit", "--out", str(out), "--quiet", "--fast", "--bootstrap", "2",
                                      "--robust-classifier", "none"])
    return out, result


@pytest.fixture(scope="session")
def shapes_specs(tmp_path_factory):
    """The second test domain, written once per session: RGB 12x12 images, K = 5, a TorchScript classifier
    (``tests/factories.py``); the specs ``classifier``, ``train``, ``real`` and the true labels."""
    from factories import write_shapes_domain

    return write_shapes_domain(tmp_path_factory.mktemp("shapes"))



@pytest.fixture(scope="session")
def shapes_folders(tmp_path_factory):
    """The shapes domain as a user keeps it: PNGs in a subfolder per class (``train/class0/...``, 150 images each
    part, 30 a class), so the sorted order of a folder is class order; the specs ``classifier``, ``train``, ``real``."""
    from factories import write_shapes_folders

    return write_shapes_folders(tmp_path_factory.mktemp("shapes_folders"))
