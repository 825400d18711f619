"""The inflate attack, the foolbox ε-bounded sweep and the ``attack bounded`` command on the digits classifier."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import approx_float32, assert_one_line_error

from isgame.attacks.bounded import bounded_sweep, parse_epsilons, targeted_pgd
from isgame.attacks.inflate import InflateAttack, cycling_targets
from isgame.attacks.inflate_result import InflateTraceDisplay
from isgame.attacks.step_rules import target_margin
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.metrics.inception_score import inception_score
from isgame.scoring.pipeline import classify
from isgame.scoring.sources.digits_data import digits_split
from isgame.scoring.sources.preprocessing import quantise_to_uint8
from isgame.scoring.sources.samples import open_images


@pytest.fixture(scope="module")
def uniform_noise():
    return open_images("noise:uniform", n=1000, seed=0).load_all()


def test_inflate_reaches_999_of_k_within_20_steps(digits_classifier, uniform_noise):
    result = InflateAttack(steps=20)(digits_classifier, uniform_noise)
    assert result.steps <= 20
    assert result.final_is >= 0.999 * 10
    assert result.initial_is < 3.0
    # Independent re-score of the returned images, through the public classifier path, as saved PNGs (in batches
    # of another size than the attack's own: float32 rounding).
    rescored = inception_score(classify(digits_classifier, quantise_to_uint8(result.images)), splits=10)
    assert rescored.is_mean == approx_float32(result.final_is_uint8)
    assert rescored.is_mean >= 0.999 * 10
    assert float(result.images.min()) >= 0.0 and float(result.images.max()) <= 1.0
    assert result.gradient_evaluations_per_sample <= 3.0
    # The trace is monotone enough to be meaningful: it starts at the noise IS and ends at the final one.
    assert result.trace[0].is_mean == pytest.approx(result.initial_is)
    assert result.trace[-1].is_mean == pytest.approx(result.final_is)


def test_inflate_is_deterministic_and_seed_sensitive(digits_classifier):
    a = open_images("noise:uniform", n=100, seed=1).load_all()
    b = open_images("noise:uniform", n=100, seed=2).load_all()
    attack = InflateAttack(steps=5)
    first, second = attack(digits_classifier, a), attack(digits_classifier, a)
    assert torch.equal(first.images, second.images)
    assert [t.is_mean for t in first.trace] == [t.is_mean for t in second.trace]
    assert not torch.equal(first.images, attack(digits_classifier, b).images)


@pytest.mark.parametrize("options", [{"optimizer": "sign"}, {"optimizer": "adam-logit"}, {"objective": "mutual-information"}])
def test_every_variant_raises_the_score(digits_classifier, options):
    start = open_images("noise:uniform", n=200, seed=0).load_all()
    result = InflateAttack(steps=10, **options)(digits_classifier, start)
    assert result.final_is > result.initial_is + 1.0


def test_repr_names_every_setting_that_changes_the_trajectory():
    attack = InflateAttack(optimizer="sign", steps=7, threshold=0.9, overshoot=1.5, step_size=0.01, splits=5,
                           target_fraction_of_k=0.9)
    rebuilt = eval(repr(attack), {"InflateAttack": InflateAttack})
    assert vars(rebuilt) == vars(attack)
    assert repr(InflateAttack(step_size=0.02)) != repr(InflateAttack(step_size=0.03))


def test_target_margin_is_the_log_odds_of_the_target():
    logits = torch.randn(20, 7, dtype=torch.float64)
    targets = cycling_targets(20, 7)
    p = torch.softmax(logits, 1)[torch.arange(20), targets]
    torch.testing.assert_close(target_margin(logits, targets), torch.log(p) - torch.log1p(-p))


@pytest.mark.parametrize("options,fragment", [({"steps": 0}, "steps must be >= 1"), ({"threshold": 1.0}, "threshold"),
                                              ({"optimizer": "lbfgs"}, "optimizer")])
def test_inflate_rejects_bad_settings(options, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        InflateAttack(**options)


@pytest.mark.parametrize("norm,epsilons", [("linf", [0.0, 2 / 255, 16 / 255, 0.3]), ("l2", [0.0, 0.1, 1.0, 3.0])])
def test_bounded_attack_stays_in_the_ball_and_the_box(digits_classifier, norm, epsilons):
    model_input = digits_split().test_images[:40]
    _, clipped, success = targeted_pgd(digits_classifier, model_input, norm=norm, epsilons=epsilons, steps=10)
    for epsilon, attacked in zip(epsilons, clipped):
        delta = (attacked - model_input).flatten(1)
        distance = delta.abs().max(dim=1).values if norm == "linf" else delta.norm(dim=1)
        assert float(distance.max()) <= epsilon * (1 + 1e-5) + 1e-6
        assert float(attacked.min()) >= 0.0 and float(attacked.max()) <= 1.0
    assert float(success[-1].float().mean()) > float(success[0].float().mean())


@pytest.mark.slow
def test_bounded_sweep_reports_thresholds_from_its_own_grid(digits_classifier):
    images = digits_split().test_images[:100]
    sweep = bounded_sweep(digits_classifier, images, norm="linf", epsilons=[0.0, 0.05, 0.5])
    assert sweep.scores[0].is_mean == pytest.approx(sweep.real_is)
    assert sweep.scores[-1].is_mean >= 0.99 * 10
    assert sweep.epsilon_for_99_percent_of_k == 0.5
    first = bounded_sweep(digits_classifier, images, norm="linf", epsilons=[0.1], steps=5, seed=4)
    again = bounded_sweep(digits_classifier, images, norm="linf", epsilons=[0.1], steps=5, seed=4)
    assert first.scores == again.scores


def test_parse_epsilons():
    assert parse_epsilons("0, 8/255,0.5") == [0.0, 8 / 255, 0.5]
    with pytest.raises(InvalidInputError, match=">= 0"):
        parse_epsilons("0.1,-0.2")
    with pytest.raises(InvalidInputError, match="cannot read"):
        parse_epsilons("abc")


def test_inflate_cli_json_and_files(cli, tmp_path):
    result = cli("attack", "inflate", "--n", "100", "--steps", "10", "--out", tmp_path, "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {"num_classes", "n", "initial_is", "final_is", "final_is_uint8", "real_is", "steps", "seconds", "trace"} <= payload.keys()
    assert payload["n"] == 100 and payload["num_classes"] == 10 and isinstance(payload["trace"], list)
    assert payload["final_is"] > payload["initial_is"]
    with __import__("numpy").load(tmp_path / "inflated.npz", allow_pickle=False) as archive:
        assert archive["images"].shape == (100, 1, 8, 8)
    assert (tmp_path / "inflated_grid.png").is_file() and (tmp_path / "inflate_trace.png").is_file()
    # The saved images score as the report says, through the public CLI.
    again = json.loads(cli("score", tmp_path / "inflated.npz", "--json", "-").stdout)
    assert again["is_mean"] == pytest.approx(payload["final_is"], rel=1e-5)


def test_bounded_cli_json(cli, tmp_path):
    result = cli("attack", "bounded", "--eps", "0,0.5", "--n", "60", "--steps", "10", "--out", tmp_path, "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    sweep = payload["sweeps"][0]
    rows = sweep["epsilons"]
    assert [r["epsilon"] for r in rows] == [0.0, 0.5]
    # The keys of the older foolbox sweep stay; the strongest attack's come beside them.
    assert {"norm", "n", "num_classes", "splits", "steps", "rel_stepsize", "real_is", "seconds", "epsilons",
            "epsilon_for_10_percent_above_real", "epsilon_for_99_percent_of_k"} <= sweep.keys()
    assert {"strategy", "epsilon_for_percent", "ceiling", "own_class_baseline", "foolbox_cycling"} <= sweep.keys()
    assert {"inception_score", "inception_score_std", "mutual_information_bits", "conditional_entropy_bits",
            "success_rate", "max_distance", "epsilon", "labels_changed", "mean_l2_distance", "strategy"} <= rows[0].keys()
    assert sweep["strategy"] == "auto" and sweep["epsilon_for_percent"].keys() == {"1", "5", "10"}
    assert rows[1]["inception_score"] >= max(rows[0]["inception_score"], sweep["own_class_baseline"][1]["inception_score"])
    assert (tmp_path / "bounded_is_vs_eps.png").is_file() and (tmp_path / "bounded_examples_linf.png").is_file()


@pytest.mark.parametrize("args,fragments", [
    (["attack", "bounded", "--eps", "0,-0.1"], ["ε must be finite and >= 0"]),
    (["attack", "inflate", "--n", "0"], ["--n must be >= 1"]),
    (["attack", "inflate", "--classifier", "vgg"], ["unknown classifier"]),
    (["attack", "bounded", "--classifier", "vgg"], ["unknown classifier"]),
    (["toy", "--n", "1"], ["--n must be >= 2"]),
    (["attack", "inflate", "--steps", "0"], ["--steps must be >= 1"]),
])
def test_attack_commands_reject_bad_input(cli, tmp_path, args, fragments):
    assert_one_line_error(cli(*args, "--out", tmp_path / "o"), *fragments)


def test_trace_display_draws_the_trace(digits_classifier):
    import matplotlib

    matplotlib.use("Agg")
    start = open_images("noise:uniform", n=50, seed=0).load_all()
    result = InflateAttack(steps=3, splits=5)(digits_classifier, start)
    display = InflateTraceDisplay.from_results({"newton": result}, real_is=8.0).plot()
    line = display.axes_[0].get_lines()[0]
    assert list(line.get_ydata()) == [t.is_mean for t in result.trace]


@pytest.mark.parametrize("optimizer", ["newton", "sign", "adam-logit"])
def test_an_interrupted_attack_resumes_to_the_same_result(digits_classifier, tmp_path, optimizer):
    start = open_images("noise:uniform", n=200, seed=5).load_all()
    uninterrupted = InflateAttack(steps=12, optimizer=optimizer)(digits_classifier, start)
    checkpoint = tmp_path / "attack.safetensors"
    InflateAttack(steps=4, optimizer=optimizer, checkpoint=checkpoint, checkpoint_every=2)(digits_classifier, start)
    assert checkpoint.is_file()
    resumed = InflateAttack(steps=12, optimizer=optimizer, checkpoint=checkpoint, checkpoint_every=2,
                            resume=True)(digits_classifier, start)
    assert torch.equal(resumed.images, uninterrupted.images)
    assert [t.is_mean for t in resumed.trace] == [t.is_mean for t in uninterrupted.trace]
    assert resumed.gradient_evaluations == uninterrupted.gradient_evaluations
    other_noise = open_images("noise:uniform", n=200, seed=6).load_all()
    with pytest.raises(InvalidInputError, match="written by another attack"):
        InflateAttack(steps=12, optimizer=optimizer, checkpoint=checkpoint, resume=True)(digits_classifier, other_noise)


def test_inflate_cli_resume(cli, tmp_path):
    checkpoint = tmp_path / "ck.safetensors"
    first = cli("attack", "inflate", "--n", "100", "--steps", "5", "--optimizer", "sign", "--checkpoint", checkpoint,
                "--out", tmp_path / "a", "--json", "-")
    assert first.exit_code == 0 and checkpoint.is_file()
    resumed = json.loads(cli("attack", "inflate", "--n", "100", "--steps", "10", "--optimizer", "sign", "--checkpoint",
                             checkpoint, "--resume", "--out", tmp_path / "b", "--json", "-").stdout)
    whole = json.loads(cli("attack", "inflate", "--n", "100", "--steps", "10", "--optimizer", "sign", "--out",
                           tmp_path / "c", "--json", "-").stdout)
    assert resumed["final_is"] == whole["final_is"] and resumed["steps"] == whole["steps"]
