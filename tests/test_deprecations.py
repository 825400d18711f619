"""Old names keep working until 0.4, and each says so: moved modules, renamed parameters and options."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest

from isgame._moved import MOVED, REMOVAL_VERSION


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_moved_module_imports_under_its_old_name_as_the_same_module_with_a_warning(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"moved to {MOVED[old]}.*removed in isgame {REMOVAL_VERSION}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])
    assert module.__spec__.name == MOVED[old]  # the module keeps its own identity


def test_the_package_itself_imports_no_old_name():
    # Every module of the package, imported fresh in another interpreter with deprecations as errors.
    import subprocess

    code = ("import warnings, pkgutil, importlib, isgame; warnings.simplefilter('error', DeprecationWarning)\n"
            "for m in pkgutil.walk_packages(isgame.__path__, 'isgame.'):\n"
            "    if not m.name.startswith(('isgame.tests', 'isgame.benchmarks', 'isgame.outputs')) and '.venv' not in m.name:\n"
            "        importlib.import_module(m.name)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_renamed_parameters_warn_and_still_work(digits_classifier):
    from isgame.probes.claim import check_claim
    from isgame.scoring.metrics.copy_detectors import data_copying_test
    from isgame.scoring.sources.digits_data import digits_split

    split = digits_split()
    with pytest.warns(DeprecationWarning, match="check_claim\\(splits=...\\) is deprecated; use claimed_splits"):
        old = check_claim(split.test_images[:100], claimed=8.0, splits=5, classifier=digits_classifier, attack=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = check_claim(split.test_images[:100], claimed=8.0, claimed_splits=5, classifier=digits_classifier,
                          attack=False)
    assert old.protocol == new.protocol and old.claimed_splits == 5
    pixels = [images.reshape(images.shape[0], -1).double().numpy()
              for images in (split.train_images, split.test_images[:200], split.test_images[200:])]
    with pytest.warns(DeprecationWarning, match="min_generated_per_cell"):
        older = data_copying_test(*pixels, min_generated_per_cell=21)
    assert older.ct_statistic == data_copying_test(*pixels, generated_per_cell_above=20).ct_statistic


def test_the_reference_option_is_hidden_says_it_is_deprecated_and_still_works(cli, tmp_path):
    result = cli("check", "digits:test", "--claimed", "8.67", "--reference", "digits:test", "--no-attack",
                 "--out", tmp_path / "check")
    assert result.exit_code == 0, result.stderr
    assert f"--reference is deprecated and removed in isgame {REMOVAL_VERSION}; write --real" in result.stderr
    assert "--reference" not in cli("check", "--help").stdout
