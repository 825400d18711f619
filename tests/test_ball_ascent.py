"""The ε-bounded score ascent (isgame.attacks.ball_ascent): monotone, never below the own-class baseline, inside
the ball and the box; its protocol, balanced assignment, closed-form ceilings and bisection checked on their own."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from isgame.attacks.balanced_targets import assign_group, balanced_targets, greedy_assign_group
from isgame.attacks.ball_ascent import STRATEGIES, check_epsilons, default_epsilons, maximise_score
from isgame.attacks.score_protocol import ScoreProtocol, group_scores, score_ascent_surrogate
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.dialects import DIALECTS, score_dialect
from isgame.scoring.sources.digits_data import digits_split

GRIDS = {"linf": [0.0, 2 / 255, 8 / 255, 32 / 255], "l2": [0.0, 16 / 255, 64 / 255, 256 / 255]}


@pytest.fixture(scope="module")
def digits():
    return digits_split().test_images[:100]


@pytest.fixture(scope="module", params=["linf", "l2"])
def ascent(request, digits_classifier, digits):
    """One small auto run per norm (100 digits, 3 steps a strategy, 3 baseline steps), shared by the tests."""
    return maximise_score(digits_classifier, digits, norm=request.param, epsilons=GRIDS[request.param], steps=3,
                          baseline_steps=3, compare_cycling=False, percents=(1, 5))


def test_every_strategy_and_auto_are_monotone_and_auto_never_loses(ascent):
    auto = [s.is_mean for s in ascent.scores]
    assert auto == sorted(auto) and auto[-1] > auto[0]
    for name in STRATEGIES:
        chain = [s.is_mean for s in ascent.strategy_scores[name]]
        assert chain == sorted(chain), name
        assert all(a >= c for a, c in zip(auto, chain)), name
    assert all(a >= b.is_mean for a, b in zip(auto, ascent.baseline))


def test_epsilon_zero_is_the_clean_set_exactly(ascent, digits_classifier, digits):
    with torch.no_grad():
        clean = ScoreProtocol().score(digits_classifier(digits))
    # The same images; the score to float32 rounding (the attack runs these small sets on one thread).
    assert ascent.scores[0].epsilon == 0.0 and ascent.scores[0].is_mean == pytest.approx(clean, rel=1e-6)
    assert ascent.clean_score == ascent.scores[0].is_mean == ascent.baseline[0].is_mean
    assert torch.equal(ascent.examples[0], ascent.clean_examples)
    assert ascent.scores[0].labels_changed == 0.0 and ascent.scores[0].max_distance == 0.0


def test_the_attacked_sets_stay_in_the_ball_and_the_box(ascent, digits):
    largest = ascent.epsilons[-1]
    delta = (ascent.final_images - digits).flatten(1)
    distance = delta.abs().max(dim=1).values if ascent.norm == "linf" else delta.norm(dim=1)
    assert float(distance.max()) <= largest * (1 + 1e-5) + 1e-6
    assert float(ascent.final_images.min()) >= 0.0 and float(ascent.final_images.max()) <= 1.0
    for row in ascent.scores:
        assert row.max_distance <= row.epsilon * (1 + 1e-5) + 1e-6
        assert row.mean_l2_distance <= (row.epsilon if ascent.norm == "l2" else row.epsilon * 8) + 1e-6


def test_each_bisection_bracket_holds_its_threshold(ascent):
    scores = {s.epsilon: s.is_mean for s in ascent.scores}
    reached = [search for search in ascent.thresholds.values() if search.epsilon is not None]
    assert reached, "the grid should reach +1% on the digits"
    for search in reached:
        low, high = search.bracket
        below = max(e for e in ascent.epsilons if e < search.grid_epsilon)
        assert search.epsilon == high and below <= low < high <= search.grid_epsilon
        known = scores | dict(search.tried)
        assert known[low] < search.target <= search.score == known[high]
        assert scores[below] < search.target <= scores[search.grid_epsilon]
        if below > 0:  # geometric midpoints: each bisection halves the bracket's log-width
            assert high / low == pytest.approx((search.grid_epsilon / below) ** (0.5 ** len(search.tried)))


def test_thresholds_and_old_keys_in_the_json(ascent):
    payload = ascent.to_dict()
    old = {"norm", "n", "num_classes", "splits", "steps", "rel_stepsize", "real_is", "epsilon_for_99_percent_of_k",
           "epsilon_for_10_percent_above_real", "seconds", "epsilons"}
    assert old | {"strategy", "epsilon_for_percent", "ceiling", "thresholds", "own_class_baseline"} <= payload.keys()
    assert payload["epsilon_for_percent"].keys() == {"1", "5"}
    row = payload["epsilons"][1]
    assert {"epsilon", "inception_score", "inception_score_std", "mutual_information_bits", "conditional_entropy_bits",
            "success_rate", "max_distance", "strategy", "labels_changed", "mean_l2_distance"} <= row.keys()


def test_a_single_strategy_runs_alone_and_the_cycling_line_is_scored(digits_classifier, digits):
    result = maximise_score(digits_classifier, digits[:60], epsilons=[0, 4 / 255], strategy="own-class", steps=2,
                            baseline_steps=2, percents=())
    assert list(result.strategy_scores) == ["own-class"]
    assert [s.is_mean for s in result.scores] == [s.is_mean for s in result.strategy_scores["own-class"]]
    assert [s.epsilon for s in result.cycling] == [0.0, 4 / 255]
    assert result.cycling[0].is_mean == result.scores[0].is_mean


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_the_protocol_groups_reproduce_every_dialect(dialect):
    logits = torch.randn(97, 7, generator=torch.Generator().manual_seed(3)) * 3
    splits = None if dialect in ("sbarratt", "barratt-sharma") else 6
    protocol = ScoreProtocol(dialect, splits)
    assert protocol.score(logits) == pytest.approx(score_dialect(logits, dialect, splits=splits).is_mean, rel=1e-6)


def test_the_surrogate_has_the_gradient_of_the_groups_mutual_information():
    logits = torch.randn(30, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    groups = ScoreProtocol("openai", 3).groups(30)
    exact = sum(g.numel() * group_scores(logits, [g]).log().squeeze() for g in groups)
    (want,) = torch.autograd.grad(exact, logits)
    (got,) = torch.autograd.grad(score_ascent_surrogate(logits, logits.detach(), torch.arange(30), groups), logits)
    torch.testing.assert_close(got, want)


def test_one_hot_ceilings_match_hand_derived_values():
    protocol = ScoreProtocol("openai", 2)
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 0, 1])  # halves: {0, 0, 1, 1} -> 2; {0, 0, 0, 1} -> exp(H(3/4, 1/4))
    quarter = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert protocol.one_hot_score(labels, 3) == pytest.approx((2 + quarter) / 2, rel=1e-12)
    # 54 images, K = 10: four classes hold 6, six hold 5.
    p = np.array([6] * 4 + [5] * 6) / 54
    assert ScoreProtocol("openai", 10).balanced_ceiling(540, 10) == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    assert ScoreProtocol.improved().balanced_ceiling(540, 10) == pytest.approx(10.0)
    # One-hot logits score what the closed form says.
    one_hot = torch.nn.functional.one_hot(labels, 3).double() * 200
    assert protocol.score(one_hot) == pytest.approx(protocol.one_hot_score(labels, 3), rel=1e-9)


def _brute_force(cost: np.ndarray) -> float:
    n, k = cost.shape
    floor, extra = divmod(n, k)
    best = math.inf
    for labels in itertools.product(range(k), repeat=n):
        counts = np.bincount(labels, minlength=k)
        if counts.min() >= floor and counts.max() <= floor + (extra > 0) and (counts > floor).sum() == extra:
            best = min(best, float(cost[np.arange(n), labels].sum()))
    return best


@pytest.mark.parametrize("n,k,seed", [(5, 3, 0), (6, 3, 1), (7, 3, 2), (4, 4, 3), (3, 4, 4)])
def test_the_balanced_assignment_is_the_cheapest_balanced_one(n, k, seed):
    cost = np.random.default_rng(seed).exponential(size=(n, k))
    classes = assign_group(cost)
    counts = np.bincount(classes, minlength=k)
    assert counts.max() - counts.min() <= 1 and counts.sum() == n
    assert float(cost[np.arange(n), classes].sum()) == pytest.approx(_brute_force(cost))
    greedy = greedy_assign_group(cost)
    assert np.bincount(greedy, minlength=k).max() - np.bincount(greedy, minlength=k).min() <= 1


def test_balanced_targets_move_the_cheapest_images_of_each_split():
    # Two splits of 4 images, K = 2. Split 0 all say class 0: the two least sure (margins 1 and 3) move to class 1.
    # Split 1 is balanced already: every image keeps its class.
    logits = torch.tensor([[5.0, 0], [4, 0], [1, 0], [3, 0], [0, 2], [2, 0], [0, 3], [1, 0]])
    targets = balanced_targets(logits, ScoreProtocol("openai", 2).groups(8))
    assert targets.tolist() == [0, 0, 1, 1, 1, 0, 1, 0]


def test_epsilon_grids_and_refusals(digits_classifier, digits):
    assert default_epsilons("l2", (1, 8, 8)) == pytest.approx([8 * e for e in default_epsilons("linf", (1, 8, 8))])
    assert check_epsilons([8 / 255, 1 / 255]) == [0.0, 1 / 255, 8 / 255]
    with pytest.raises(InvalidInputError, match="finite and >= 0"):
        check_epsilons([0.1, -1.0])
    with pytest.raises(InvalidInputError, match="strategy"):
        maximise_score(digits_classifier, digits, strategy="best")
    with pytest.raises(InvalidInputError, match="fewer than the 10 splits"):
        maximise_score(digits_classifier, digits[:5])


def test_the_displays_draw_the_numbers(ascent):
    import matplotlib

    matplotlib.use("Agg")
    from isgame.attacks.ball_ascent_result import BoundedAttackDisplay, PerturbationGridDisplay

    display = BoundedAttackDisplay([ascent]).plot()
    lines = {line.get_label(): line for line in display.axes_[0].get_lines()}
    assert list(lines["auto"].get_ydata()) == [s.is_mean for s in ascent.scores]
    assert list(lines["auto"].get_xdata()) == pytest.approx([e * 255 for e in ascent.epsilons])
    assert any(label.startswith("own-class PGD") for label in lines) and "direct" in lines
    grid = PerturbationGridDisplay(ascent).plot()
    labels = [tick.get_text() for tick in grid.ax_.get_yticklabels()]
    assert labels[0] == "clean" and labels[1::2] == [f"ε {e * 255:.3g}/255" for e in ascent.epsilons[1:]]
    assert display.figure_ is display.axes_[0].figure and grid.figure_ is grid.ax_.figure


def test_the_bounded_command_passes_its_options(cli, monkeypatch, tmp_path):
    import isgame.app.attack_commands as commands

    received = {}

    def fake(**options):
        received.update(options)
        raise InvalidInputError("stop here")

    monkeypatch.setattr(commands, "run_bounded", fake)
    result = cli("attack", "bounded", "--strategy", "balanced", "--dialect", "barratt-sharma", "--splits", "1",
                 "--steps", "4", "--eps", "0,2/255", "--out", tmp_path)
    assert result.exit_code != 0 and "stop here" in result.stderr
    assert (received["strategy"], received["dialect"], received["splits"], received["steps"]) == (
        "balanced", "barratt-sharma", 1, 4)
    assert received["epsilons"] == [0.0, 2 / 255]
