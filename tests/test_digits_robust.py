"""digits-robust: the PGD adversarially trained digits CNN (R-IS, R-FID) and the adversarial training option."""

from __future__ import annotations

import json

import pytest
import torch

from isgame.scoring.classifiers import CLASSIFIER_NAMES, load_classifier
from isgame.scoring.classifiers.adversarial_training import ROBUST_EPSILON, pgd_linf, robust_accuracy
from isgame.scoring.classifiers.digits import SHIPPED_DIGITS_WEIGHTS, held_out_accuracy, train_digits_cnn
from isgame.scoring.domains import DIGITS_CLASSIFIERS, load_domain
from isgame.scoring.errors import InvalidInputError
from isgame.scoring.pipeline import classify
from isgame.scoring.sources.digits_data import digits_split


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """8x8 images are too small to share between threads: one thread is several times faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def robust():
    return load_classifier("digits-robust")


def test_digits_robust_is_shipped_and_reaches_95_percent_held_out(robust):
    split = digits_split()
    predicted = classify(robust, split.test_images).argmax(dim=1)
    accuracy = float((predicted == split.test_labels).float().mean())
    assert accuracy >= 0.95
    assert held_out_accuracy(robust.network) == pytest.approx(accuracy)
    assert robust.name == "digits-robust" and robust.weights_sha256 != load_classifier("digits").weights_sha256
    assert "digits-robust" in CLASSIFIER_NAMES and "digits-robust" in DIGITS_CLASSIFIERS
    assert SHIPPED_DIGITS_WEIGHTS["digits-robust"][1] == 2  # its training seed


def test_digits_robust_resists_pgd_better_than_digits(robust):
    """A real comparison on 100 held-out digits with a 10-step attack (steps of ε / 4) at the stated ε (could fail)."""
    split = digits_split()
    images, labels = split.test_images[:100], split.test_labels[:100]
    scores = {name: robust_accuracy(c, images, labels, epsilon=ROBUST_EPSILON, steps=10, rel_stepsize=0.25, seed=0)
              for name, c in (("digits-robust", robust), ("digits", load_classifier("digits")))}
    for score in scores.values():
        assert score.robust_accuracy <= score.clean_accuracy
    assert scores["digits-robust"].robust_accuracy >= scores["digits"].robust_accuracy + 0.2
    # The seed makes the measurement repeatable and leaves the caller's random stream alone.
    state = torch.get_rng_state()
    again = robust_accuracy(robust, images, labels, epsilon=ROBUST_EPSILON, steps=10, rel_stepsize=0.25, seed=0)
    assert torch.equal(state, torch.get_rng_state())
    assert again == scores["digits-robust"]


def test_pgd_linf_stays_in_the_ball_and_the_box_and_raises_the_loss(robust):
    split = digits_split()
    images, labels = split.test_images[:64], split.test_labels[:64]
    adversarial = pgd_linf(load_classifier("digits").network, images, labels, epsilon=0.1, steps=5,
                           generator=torch.Generator().manual_seed(0))
    assert float((adversarial - images).abs().max()) <= 0.1 + 1e-6
    assert float(adversarial.min()) >= 0 and float(adversarial.max()) <= 1
    network = load_classifier("digits").network
    with torch.no_grad():
        clean_loss = torch.nn.functional.cross_entropy(network(images)[0], labels)
        attacked_loss = torch.nn.functional.cross_entropy(network(adversarial)[0], labels)
    assert float(attacked_loss) > 2 * float(clean_loss)


def test_adversarial_training_is_deterministic_and_takes_effect():
    """One epoch with 1-step PGD (cheap): bit-identical twice; different from standard training of the same seed."""
    first = train_digits_cnn(5, epochs=1, adversarial_epsilon=0.1, adversarial_steps=1)
    second = train_digits_cnn(5, epochs=1, adversarial_epsilon=0.1, adversarial_steps=1)
    for key, value in first.network.state_dict().items():
        assert torch.equal(value, second.network.state_dict()[key]), key
    standard = train_digits_cnn(5, epochs=1)
    assert not torch.equal(first.network.conv1.weight, standard.network.conv1.weight)
    assert first.to_dict() == {"seed": 5, "epochs": 1, "held_out_accuracy": first.held_out_accuracy,
                               "adversarial_epsilon": 0.1, "adversarial_steps": 1}
    assert set(standard.to_dict()) == {"seed", "epochs", "held_out_accuracy"}  # standard metadata unchanged


@pytest.mark.parametrize("epsilon", [0.0, -0.1, 1.5, float("nan")])
def test_adversarial_epsilon_out_of_range_is_refused(epsilon):
    with pytest.raises(InvalidInputError, match="adversarial_epsilon"):
        train_digits_cnn(0, epochs=1, adversarial_epsilon=epsilon)


def test_train_digits_passes_the_adversarial_options(cli, monkeypatch, tmp_path):
    import isgame.scoring.classifiers.digits as digits

    received = {}

    def fake_train(seed, **options):
        received.update(seed=seed, **options)
        return digits.DigitsTrainingResult(
            network=digits.DigitsCNN(), seed=seed, epochs=options["epochs"], held_out_accuracy=0.5,
            adversarial_epsilon=options["adversarial_epsilon"], adversarial_steps=options["adversarial_steps"])

    monkeypatch.setattr(digits, "train_digits_cnn", fake_train)
    out = tmp_path / "w.safetensors"
    result = cli("train-digits", "--out", str(out), "--seed", "2", "--epochs", "3", "--adversarial-epsilon", "0.1",
                 "--adversarial-steps", "4", "--json", "-")
    assert result.exit_code == 0, result.stderr
    assert received == {"seed": 2, "epochs": 3, "adversarial_epsilon": 0.1, "adversarial_steps": 4}
    assert json.loads(result.stdout)["adversarial_epsilon"] == 0.1
    cli("train-digits", "--out", str(out), "--epochs", "3")
    assert received["adversarial_epsilon"] is None  # default: today's standard training


def test_score_and_domain_accept_digits_robust(cli):
    payload = json.loads(cli("score", "digits:test", "-c", "digits-robust", "--json", "-", "--quiet").stdout)
    assert payload["classifier"]["name"] == "digits-robust"
    logits = classify(load_classifier("digits-robust"), digits_split().test_images)
    assert payload["n"] == logits.shape[0] == 540
    domain = load_domain("digits-robust")
    assert domain.name == "digits" and domain.classifier.name == "digits-robust"


def test_the_inflate_attack_through_the_robust_classifier_beside_the_standard_one(robust, tmp_path):
    import numpy as np

    from isgame.app.attack_commands import run_inflate
    from isgame.attacks.robust_inflate import nearest_distances
    from isgame.scoring.domains import digits_domain

    domain = digits_domain()
    report = run_inflate(domain=domain, out_dir=tmp_path, n=30, steps=3, progress=False, robust_classifier=robust)
    payload = report.to_dict()["robust"]
    assert payload["robust_classifier"] == "digits-robust" and payload["n"] == 30
    assert payload["robust_final_is"] == pytest.approx(report.robust.robust.final_is)
    assert report.robust.robust.images.shape == (30, 1, 8, 8) and not torch.equal(report.robust.robust.images,
                                                                                   report.robust.standard.images)
    # Distances by brute force: every image against every training digit.
    images, train = report.robust.robust.images.reshape(30, -1).double(), domain.train.reshape(-1, 64).double()
    brute = torch.cdist(images, train).min(dim=1).values.numpy()
    assert np.allclose(nearest_distances(report.robust.robust.images, domain.train), brute)
    assert payload["nearest_training_distance"]["robust inflated"] == pytest.approx(float(brute.mean()))
    assert payload["nearest_training_distance"]["real held-out"] < payload["nearest_training_distance"]["noise"]
    assert (tmp_path / report.files["robust_grid"]).is_file()
