"""Metric and game plug-ins: one registry for ``isgame metrics`` and the matrix, entry points, ``--plugin``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import assert_one_line_error

import isgame
from isgame.probes.matrix.games import GAMES
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics import registry
from isgame.scoring.runtime import plugins

#: a plug-in package as a researcher would write it: one metric (squared distance of the feature means, lower is
#: better, claims fidelity) and one game (held-out images blurred, which degrades fidelity)
PLUGIN_SOURCE = textwrap.dedent('''
    import torch

    import isgame


    @isgame.register_metric("mean-shift", higher_is_better=False, scope=("fidelity",), headline=("value",),
                            description="squared distance of the feature means")
    def mean_shift(inputs):
        return {"value": float(((inputs.fake.mean(0) - inputs.real.mean(0)) ** 2).sum()), "rows": len(inputs.fake)}


    @isgame.register_game("blurred real", degrades=("fidelity",), description="held-out images, box-blurred")
    def blurred_real(domain, n, seed, *, steps=None):
        images = domain.real[:n]
        return torch.nn.functional.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
''')


@pytest.fixture
def forget_plugins():
    """Whatever a test registers is removed after it (the registry is the process's)."""
    metrics, columns, games, loaded = dict(registry.METRICS), dict(registry.COLUMNS), dict(GAMES), dict(plugins._loaded)
    yield
    for name in set(registry.METRICS) - set(metrics):
        registry.unregister_metric(name)
    for name in set(GAMES) - set(games):
        del GAMES[name]
    plugins._loaded.clear()
    plugins._loaded.update(loaded)
    assert dict(registry.COLUMNS) == columns
    for module in [name for name in sys.modules if name.startswith(("isgame_plugin_", "isgame_meanshift"))]:
        del sys.modules[module]


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """The plug-in built and installed by pip (no index, no build isolation) into a folder of its own, with its
    entry points in the groups isgame.metrics and isgame.games."""
    source = tmp_path_factory.mktemp("plugin-source")
    (source / "isgame_meanshift").mkdir()
    (source / "isgame_meanshift" / "__init__.py").write_text(PLUGIN_SOURCE)
    (source / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "isgame-meanshift"
        version = "0.1"

        [project.entry-points."isgame.metrics"]
        mean-shift = "isgame_meanshift"

        [project.entry-points."isgame.games"]
        blurred-real = "isgame_meanshift"
    '''))
    target = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                            "--no-build-isolation", "--target", str(target), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert list(target.glob("isgame_meanshift-0.1.dist-info/entry_points.txt"))
    return target


def test_an_installed_plugin_is_found_by_its_entry_point_in_metrics_and_matrix(installed_plugin, monkeypatch,
                                                                               forget_plugins, cli, tmp_path):
    monkeypatch.syspath_prepend(str(installed_plugin))
    result = cli("metrics", "digits:test", "noise:uniform", "--n", "60", "--json", "-", "--quiet")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert "mean-shift" in payload["metrics"] and payload["values"]["mean-shift"]["rows"] == 60
    # an independent computation: the digits CNN's features of both sets, their mean difference
    from isgame.scoring.classifiers import load_classifier
    from isgame.scoring.pipeline import classify_with_features
    from isgame.scoring.sources.samples import open_images

    classifier = load_classifier("digits")
    real = classify_with_features(classifier, open_images("digits:test", n=60).load_all())[1].double().numpy()
    fake = classify_with_features(classifier, open_images("noise:uniform", n=60, seed=0).load_all())[1].double().numpy()
    expected = float(((fake.mean(0) - real.mean(0)) ** 2).sum())
    assert payload["values"]["mean-shift"]["value"] == pytest.approx(expected, rel=1e-5)

    matrix = cli("matrix", "--n", "60", "--bootstrap", "40", "--metric", "mean-shift", "--metric", "FID",
                 "--game", "uniform noise", "--game", "blurred real", "--out", tmp_path / "m", "--json", "-", "--quiet")
    assert matrix.exit_code == 0, matrix.stderr
    report = json.loads(matrix.stdout)
    assert report["metrics"] == ["FID", "mean-shift"] and "blurred real" in report["games"]
    assert report["families"]["mean-shift"] == "plug-in" and report["scopes"]["mean-shift"] == ["fidelity"]
    assert report["game_declarations"]["blurred real"]["degrades"] == ["fidelity"]
    noise = report["cells"]["uniform noise"]["mean-shift"]
    assert noise["value"] > report["cells"]["held-out real"]["mean-shift"]["value"]
    assert noise["verdict"] == "detected"  # noise is far from the digits' feature means: flagged, in scope


def test_plugin_option_loads_a_file_and_a_broken_one_is_one_line(tmp_path, monkeypatch, forget_plugins, cli):
    module = tmp_path / "my_metric.py"
    module.write_text(PLUGIN_SOURCE.replace('"mean-shift"', '"mean-shift-file"').replace('"blurred real"',
                                                                                         '"blurred real (file)"'))
    result = cli("metrics", "digits:test", "noise:uniform", "--n", "40", "--metric", "mean-shift-file",
                 "--plugin", module, "--json", "-", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert list(json.loads(result.stdout)["values"]) == ["mean-shift-file"]
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no GPU here')\n")
    assert_one_line_error(cli("matrix", "--plugin", broken, "--n", "40"), "--plugin", "broken.py", "no GPU here")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(cli("metrics", "digits:test", "noise:uniform", "--plugin", "not_a_module"), "--plugin",
                          "not_a_module", "not found")


def test_the_registry_is_one_for_metrics_and_matrix(forget_plugins):
    from isgame.app import metrics_command
    from isgame.probes.matrix import HIGHER_IS_BETTER, METRIC_SCOPES, METRICS

    assert metrics_command.METRICS is registry.METRICS and isgame.MetricInputs is registry.MetricInputs
    # every column a metric fills exists, and says which metric fills it
    for key, metric in registry.METRICS.items():
        for column in metric.columns:
            assert registry.COLUMN_SOURCES[column] == key
    assert registry.COLUMN_SOURCES["IS"] is None and registry.COLUMN_SOURCES["precision"] == "precision-recall"

    @isgame.register_metric("spread", higher_is_better=True, scope=("diversity",), differentiable=True)
    def spread(inputs):
        return {"value": inputs.fake.std()}

    # the matrix's views are live: a plug-in column shows in every one
    assert METRICS[-1] == "spread" and HIGHER_IS_BETTER["spread"] is True and METRIC_SCOPES["spread"] == ("diversity",)
    assert registry.METRICS["spread"].differentiable and registry.COLUMNS["spread"].origin == __name__
    with pytest.raises(InvalidInputError, match="taken"):
        isgame.register_metric("FID", higher_is_better=False)(spread)
    with pytest.raises(InvalidInputError, match="scope"):
        isgame.register_metric("odd", higher_is_better=False, scope=("beauty",))(spread)
    with pytest.raises(InvalidInputError, match="taken"):
        isgame.register_game("held-out real", lambda *a, **k: None, degrades=())
    with pytest.raises(InvalidInputError, match="degrades"):
        isgame.register_game("odd game", lambda *a, **k: None, degrades=("beauty",))


def test_a_plugin_metric_without_a_direction_stays_out_of_the_matrix(forget_plugins):
    @isgame.register_metric("size-only")
    def size_only(inputs):
        return {"rows": np.int64(len(inputs.fake))}

    assert "size-only" in registry.METRICS and "size-only" not in registry.COLUMNS


def test_a_differentiable_plugin_is_attacked_white_box_on_the_leaderboard(forget_plugins):
    """A plug-in that computes in torch is attacked through its own function: its loss at ε = 0 is its matrix
    value, and the attack lowers it; one that is not differentiable is judged by transfer from the FID attack."""
    import torch

    from isgame.probes.leaderboard import robustness_leaderboard
    from isgame.scoring.domains import digits_domain

    @isgame.register_metric("mean-gap", higher_is_better=False, scope=("fidelity",), headline=("value",),
                            differentiable=True)
    def mean_gap(inputs):
        gap = inputs.fake.mean(0) - inputs.real.mean(0)
        return {"value": (gap * gap).sum()}

    @isgame.register_metric("max-gap", higher_is_better=False, scope=("fidelity",), headline=("value",))
    def max_gap(inputs):
        return {"value": float(np.abs(np.asarray(inputs.fake).mean(0) - inputs.real.mean(0)).max())}

    result = robustness_leaderboard(digits_domain(), n=60, metrics=["mean-gap", "max-gap", "FID"],
                                    sources=["honest KDE"], epsilons=[0, 4 / 255, 16 / 255], steps=3,
                                    bisection_steps=0)
    entries = {entry.metric: entry for entry in result.entries}
    assert entries["mean-gap"].attack == "white-box" and entries["max-gap"].attack == "transfer from FID"
    losses = entries["mean-gap"].attack_losses
    assert losses[0] == pytest.approx(entries["mean-gap"].grid[0].value, rel=1e-6) and losses[-1] < losses[0]
    assert all(later <= earlier for earlier, later in zip(losses, losses[1:]))
    assert torch.is_tensor(mean_gap(registry.MetricInputs(real=torch.zeros(2, 3, dtype=torch.float64),
                                                          fake=torch.ones(2, 3, dtype=torch.float64), train=None,
                                                          real_statistics=None))["value"])


def test_one_metric_in_the_matrix_is_its_scorecard(forget_plugins, tmp_path, cli):
    """isgame matrix --plugin FILE --metric NAME: the plug-in's column of verdicts, its ε to fool on each degraded
    source, and scorecard.html; the JSON's scorecard matches the matrix's own cells."""
    module = tmp_path / "my_metric.py"
    module.write_text(PLUGIN_SOURCE)
    result = cli("matrix", "--plugin", module, "--metric", "mean-shift", "--n", "80", "--game", "uniform noise",
                 "--game", "class-sorted order", "--out", tmp_path / "m", "--json", "-", "--quiet")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    card = payload["scorecard"]
    assert card["metric"] == "mean-shift" and card["declaration"]["scope"] == ["fidelity"]
    assert card["declaration"]["origin"].startswith("isgame_plugin_my_metric_")
    for game, verdict in card["verdicts"].items():
        assert verdict["verdict"] == payload["cells"][game]["mean-shift"]["verdict"]
    assert card["verdicts"]["uniform noise"]["verdict"] == "detected"
    assert set(card["epsilon_to_fool"]) == {"honest KDE", "uniform noise"}
    assert all(entry["attack"] == "transfer from FID" for entry in card["leaderboard"]["entries"])
    page = (tmp_path / "m" / "scorecard.html").read_text()
    assert "Scorecard: mean-shift" in page and "ε that fools it" in page
    assert (tmp_path / "m" / card["files"]["leaderboard"]).stat().st_size > 0
