"""The 1-D counter-example: integration against Monte Carlo and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from isgame.attacks.toy import (
    GENERATOR_NAMES,
    binary_entropy_of_posterior,
    integrated_inception_score,
    posterior_class1,
    toy_counterexample,
    toy_generators,
)


def test_bayes_posterior_is_the_sigmoid_of_the_density_ratio():
    x = np.linspace(-30, 30, 121)
    scale = math.sqrt(2.0)
    ratio = stats.norm.pdf(x, 1, scale) / (stats.norm.pdf(x, -1, scale) + stats.norm.pdf(x, 1, scale))
    np.testing.assert_allclose(posterior_class1(x), ratio, rtol=1e-12, atol=1e-300)
    assert posterior_class1(np.array([-np.inf, np.inf])).tolist() == [0.0, 1.0]


def test_stable_entropy_matches_the_direct_formula():
    x = np.linspace(-20, 20, 81)
    p = posterior_class1(x)
    direct = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    np.testing.assert_allclose(binary_entropy_of_posterior(x), direct, rtol=1e-9, atol=1e-12)


def test_closed_forms():
    scores = {g.name: integrated_inception_score(g)[0] for g in toy_generators()}
    assert scores["plus-minus-infinity"] == 2.0
    # U(-100, 100): the integral of h(sigmoid(x)) over the line is pi^2 / 3.
    assert scores["uniform-100"] == pytest.approx(2 * math.exp(-math.pi**2 / 600), rel=1e-10)
    # Every generator beats the data, which itself is far from the maximum of 2.
    assert all(scores[name] > scores["true-mixture"] for name in GENERATOR_NAMES[1:])
    assert 1.0 < scores["true-mixture"] < 1.5


@pytest.mark.slow
def test_integration_agrees_with_monte_carlo_within_four_standard_errors():
    result = toy_counterexample(n=200_000, seed=3)
    assert [g.name for g in result.generators] == list(GENERATOR_NAMES)
    for g in result.generators:
        assert g.mc_stderr > 0
        assert abs(g.inception_score - g.inception_score_mc) <= 4 * g.mc_stderr, g.name


def test_toy_cli_json(cli, tmp_path):
    import json

    result = cli("toy", "--n", "5000", "--json", "-", "--out", tmp_path)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [g["name"] for g in payload["generators"]] == list(GENERATOR_NAMES)
    for g in payload["generators"]:
        assert {"name", "inception_score", "inception_score_mc", "mc_stderr"} <= g.keys()
    assert (tmp_path / "toy_densities.png").is_file() and (tmp_path / "toy_scores.png").is_file()
