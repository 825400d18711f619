"""PGD adversarial training (Madry et al., ICLR 2018) and robust accuracy, for the ``digits-robust`` classifier.

The defence of Alfarra et al. (ECCV 2022, "On the Robustness of Quality Measures for GANs",
MotasemAlfarra/R-FID-Robustness-of-Quality-Measures-for-GANs): score with a classifier trained
with L∞ PGD adversarial training, giving R-IS and R-FID. Their repository ships two such
Inception v3 networks (``kappa_64.pth.tar``, ``kappa_128.pth.tar``, "adversarially-trained
InceptionV3 models that are trained with ℓ∞ PGD adversarial training", README) but no training
script; its attacks use an L∞ budget of "usually 8/255" (``main_fid.py``) and clip to [0, 1].
Here the same recipe is applied to :class:`~isgame.scoring.classifiers.digits.DigitsCNN`:

* inner maximisation: untargeted L∞ PGD on the cross-entropy of the true label, uniform random
  start in the ε-ball, ``steps`` signed-gradient steps of 2.5 ε / steps (Madry et al.'s rule),
  each projected on the ε-ball and on the pixel box [0, 1];
* outer minimisation: Adam on the cross-entropy of the perturbed batch only (Madry et al.'s
  objective, no clean term).

ε is in pixel units of [0, 1] (1 = ink). The 8x8 digits hold 17 grey levels (0..16 / 16), so
ε = 0.1 is 1.6 grey levels per pixel: below the ink/no-ink contrast of a stroke (about 1), above
quantisation. 8/255 ≈ 0.031 would be half a grey level here and defend against almost nothing
that a standard network does not already resist; 0.2 and beyond starts erasing the faint strokes
that tell 1 from 7 and costs clean accuracy.

Robust accuracy is measured with foolbox's ``LinfPGD`` (untargeted ``Misclassification``,
foolbox's default relative step 0.01 / 0.3, random start) with more steps than training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from isgame.scoring.classifiers.base import foolbox_model
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.results import FieldsAsDict

#: the shipped digits-robust classifier's training budget: L∞ radius in [0, 1] pixel units, PGD steps
ROBUST_EPSILON = 0.1
ROBUST_TRAIN_STEPS = 7
#: PGD steps of the robust-accuracy measurement (more than training, so training's attack is not the yardstick)
ROBUST_EVAL_STEPS = 50


def check_epsilon(epsilon: float, name: str = "adversarial_epsilon") -> float:
    """ε must lie in (0, 1]: a positive L∞ radius in [0, 1] pixel units."""
    if not (0 < float(epsilon) <= 1):
        raise InvalidInputError(f"{parameter(name)} must be in (0, 1] (an L∞ radius in [0, 1] pixel units), got {epsilon}")
    return float(epsilon)


def pgd_linf(
    network: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float,
    steps: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Untargeted L∞ PGD (Madry et al.): images (N, C, H, W) in [0, 1], labels (N,) -> perturbed (N, C, H, W).

    ``network`` maps images to (logits, ...) or logits. Uniform random start in the ε-ball from ``generator``
    (so training stays reproducible from its seed), then ``steps`` ascent steps of size 2.5 ε / steps on the
    cross-entropy, each projected on the ε-ball and the box [0, 1]. The network's parameters get no gradient.
    """
    step_size = 2.5 * epsilon / steps
    start = (torch.rand(images.shape, generator=generator) * 2 - 1) * epsilon
    adversarial = (images + start).clamp(0, 1)
    for _ in range(steps):
        adversarial.requires_grad_(True)
        output = network(adversarial)
        logits = output[0] if isinstance(output, tuple) else output
        loss = torch.nn.functional.cross_entropy(logits, labels)
        (gradient,) = torch.autograd.grad(loss, adversarial)
        with torch.no_grad():
            adversarial = adversarial + step_size * gradient.sign()
            adversarial = torch.min(torch.max(adversarial, images - epsilon), images + epsilon).clamp(0, 1)
    return adversarial.detach()


@dataclass(frozen=True)
class RobustAccuracy(FieldsAsDict):
    """Clean and robust top-1 accuracy (fractions in [0, 1]) of one classifier on ``n`` labelled images."""

    classifier: str
    epsilon: float
    steps: int
    rel_stepsize: float
    n: int
    clean_accuracy: float
    robust_accuracy: float
    attack: str = "foolbox LinfPGD (untargeted), random start"


def robust_accuracy(
    classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float,
    steps: int = ROBUST_EVAL_STEPS,
    rel_stepsize: float | None = None,
    seed: int = 0,
) -> RobustAccuracy:
    """Accuracy of ``classifier`` (an :class:`ImageClassifier`) on images (N, C, H, W) in [0, 1] with labels (N,),
    clean and under foolbox's untargeted L∞ PGD of radius ``epsilon`` (pixel units) with ``steps`` steps of
    ``rel_stepsize`` × ε each (default: foolbox's 0.01 / 0.3; a short attack needs larger steps, e.g. 2.5 / steps).

    An image counts as robust when it is classified correctly and the attack finds no misclassified point in the
    ball. foolbox draws its random start from torch's global generator: it is seeded with ``seed`` inside a forked
    RNG state, so the caller's random stream is left as it was.
    """
    import foolbox as fb

    epsilon = check_epsilon(epsilon, "epsilon")
    if steps < 1:
        raise InvalidInputError(f"{parameter('steps')} must be >= 1, got {steps}")
    model_input = classifier.preprocess(images).float()
    with torch.no_grad():
        clean = classifier.logits_from_model_input(model_input).argmax(dim=1) == labels
    fmodel = foolbox_model(classifier)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        options = {} if rel_stepsize is None else {"rel_stepsize": rel_stepsize}
        attack = fb.attacks.LinfPGD(steps=steps, **options)
        _, _, success = attack(fmodel, model_input, fb.criteria.Misclassification(labels), epsilons=epsilon)
    robust = clean & ~success.cpu()
    return RobustAccuracy(classifier=getattr(classifier, "name", type(classifier).__name__), epsilon=epsilon,
                          steps=steps, rel_stepsize=attack.rel_stepsize, n=int(labels.shape[0]),
                          clean_accuracy=float(clean.float().mean()), robust_accuracy=float(robust.float().mean()))
