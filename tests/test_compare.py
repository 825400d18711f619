"""isgame compare: which protocol fields differ, how far they alone move IS, and the standard error."""

from __future__ import annotations

import json
import math

import pytest
from helpers import assert_one_line_error

from isgame.app.compare_command import compare_files
from isgame.app.scoring_commands import score_in_dialects, score_source


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Score results of digits:test that differ in one setting each, written as JSON files."""
    folder = tmp_path_factory.mktemp("compare")
    runs = {"base": {}, "splits5": {"splits": 5}, "seed1": {"shuffle": True, "seed": 1},
            "seed2": {"shuffle": True, "seed": 2}, "noshuffle_seed7": {"seed": 7},
            "digits_b": {"classifier_name": "digits-b"}}
    paths = {}
    for name, options in runs.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(score_source("digits:test", progress=False, **options).to_dict()))
    paths["openai"] = folder / "openai.json"
    paths["openai"].write_text(json.dumps(score_in_dialects("digits:test", "openai", progress=False).to_dict()))
    paths["all"] = folder / "all.json"
    paths["all"].write_text(json.dumps(score_in_dialects("digits:test", "all", progress=False).to_dict()))
    return paths


def load(path):
    return json.loads(path.read_text())


def test_splits_only_is_explained_by_the_measured_split_bias(results):
    comparison = compare_files(results["base"], results["splits5"])
    assert [d.field for d in comparison.differences] == ["splits"]
    a, b = load(results["base"]), load(results["splits5"])
    assert comparison.difference == pytest.approx(b["is_mean"] - a["is_mean"])
    # Same samples: exp(I) is the same, so the measured split biases differ by exactly the difference.
    assert comparison.allowance == pytest.approx(abs(comparison.difference), rel=1e-9)
    assert comparison.exceeds_protocol is False and comparison.comparable
    # Miller-Madow: IS (1 - exp(-(K_eff - 1)(S - 1)/(2N))) within 20% of the measured bias at S = 10.
    formula = a["improved_is"] * (1 - math.exp(-9 * 9 / (2 * 540)))
    assert formula == pytest.approx(a["improved_is"] - a["is_mean"], rel=0.2)
    se = math.hypot(a["is_std"] / math.sqrt(10), b["is_std"] / math.sqrt(5))
    assert comparison.standard_error == pytest.approx(se) and comparison.z == pytest.approx(comparison.difference / se)


def test_seed_only_with_shuffle_is_a_reshuffle(results):
    comparison = compare_files(results["seed1"], results["seed2"])
    assert [d.field for d in comparison.differences] == ["seed"]
    a, b = load(results["seed1"]), load(results["seed2"])
    expected = 2 * math.hypot(a["is_std"] / math.sqrt(10), b["is_std"] / math.sqrt(10))
    assert comparison.allowance == pytest.approx(expected)
    assert comparison.exceeds_protocol == (abs(b["is_mean"] - a["is_mean"]) > expected)


def test_seed_without_shuffle_moves_nothing(results):
    comparison = compare_files(results["base"], results["noshuffle_seed7"])
    assert [(d.field, d.allowance) for d in comparison.differences] == [("seed", 0.0)]
    assert comparison.difference == 0 and comparison.exceeds_protocol is False


def test_other_weights_are_not_comparable(results):
    comparison = compare_files(results["base"], results["digits_b"])
    fields = {d.field for d in comparison.differences}
    assert {"classifier", "weights_sha256"} <= fields
    assert not comparison.comparable and comparison.allowance is None and "not comparable" in comparison.verdict


def test_dialect_needs_a_measured_spread(results):
    unknown = compare_files(results["base"], results["openai"])
    assert "dialect" in {d.field for d in unknown.differences} and unknown.allowance is None
    known = compare_files(results["base"], results["openai"], dialect_spread=results["all"])
    spread = load(results["all"])["spread_percent"]
    dialect = next(d for d in known.differences if d.field == "dialect")
    assert dialect.allowance == pytest.approx(spread / 100 * (known.is_a + known.is_b) / 2)


def test_identical_results_have_no_differences(results):
    comparison = compare_files(results["base"], results["base"])
    assert comparison.differences == [] and comparison.difference == 0 and "same protocol" in comparison.verdict


def test_cli_table_json_and_one_line_errors(cli, results, tmp_path):
    out = cli("compare", results["base"], results["splits5"], "--json", "-")
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["differences"][0]["field"] == "splits" and "split bias" in out.stderr
    assert_one_line_error(cli("compare", results["base"], tmp_path / "missing.json"), "B", "not found")
    (tmp_path / "text.json").write_text("not json")
    assert_one_line_error(cli("compare", tmp_path / "text.json", results["base"]), "not JSON")
    (tmp_path / "old.json").write_text(json.dumps({"is_mean": 2.0}))
    assert_one_line_error(cli("compare", tmp_path / "old.json", results["base"]), "no provenance")
    assert_one_line_error(cli("compare", results["all"], results["base"]), "--dialect-spread", "every dialect")
    assert_one_line_error(cli("compare", results["base"], results["openai"], "--dialect-spread", results["base"]),
                          "--dialect-spread", "every dialect")
