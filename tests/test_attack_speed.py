"""The inflate attack's cost: the class shift, its pass counts, and chunks bounded by an activation budget."""

from __future__ import annotations

import math

import pytest
import torch

from isgame.attacks.chunk_size import chunk_rows, saved_activation_bytes_per_row
from isgame.attacks.class_shift import MIN_SAMPLES_PER_CLASS, class_shifts
from isgame.attacks.inflate import InflateAttack
from isgame.attacks.step_rules import target_margin
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.sources.samples import open_images

GOAL = math.log(0.99995 / 0.00005)


@pytest.fixture(scope="module")
def noise_1000():
    return open_images("noise:uniform", n=1000, seed=0).load_all()


def test_class_shift_reaches_999_of_k_in_under_1_8_passes_with_one_check_per_finished_sample(digits_classifier,
                                                                                             noise_1000):
    result = InflateAttack(steps=20, target_fraction_of_k=0.999)(digits_classifier, noise_1000)
    assert result.class_shift and result.final_is >= 0.999 * 10
    assert result.gradient_evaluations_per_sample <= 1.8
    # The trace opens with the noise, then the shifted noise; both at step 0.
    assert [t.step for t in result.trace[:2]] == [0, 0] and result.trace[0].is_mean == pytest.approx(result.initial_is)
    assert result.initial_is < 3.0 < result.trace[1].is_mean
    loop = result.trace[1:]
    # Independent count from the trace: every active sample of every step took one forward+backward pass...
    assert result.gradient_evaluations == result.class_shift_gradient_evaluations + sum(t.active for t in loop)
    # ...and the only forward-only passes are the checks that found a sample (or a class's grey image) at target.
    assert result.forward_evaluations - result.gradient_evaluations == (1000 - loop[-1].active) + 10
    assert 10 <= result.class_shift_gradient_evaluations <= 10 * 30


def test_class_shift_only_where_it_pays(digits_classifier):
    few = open_images("noise:uniform", n=10 * MIN_SAMPLES_PER_CLASS - 1, seed=0).load_all()
    assert not InflateAttack(steps=1)(digits_classifier, few).class_shift
    enough = open_images("noise:uniform", n=10 * MIN_SAMPLES_PER_CLASS, seed=0).load_all()
    assert InflateAttack(steps=1)(digits_classifier, enough).class_shift
    assert not InflateAttack(steps=1, optimizer="sign")(digits_classifier, enough).class_shift
    assert not InflateAttack(steps=1, class_shift=False)(digits_classifier, enough).class_shift


def test_shifts_move_the_grey_image_to_each_class_and_each_sample_by_its_class(digits_classifier):
    classes = torch.tensor([1, 4, 7])
    shifts = class_shifts(digits_classifier, classes, sample_shape=(1, 8, 8), goal=GOAL, overshoot=2.0, chunk_rows=2)
    with torch.no_grad():
        margins = target_margin(digits_classifier.logits_from_model_input(0.5 + shifts.shifts), classes)
    assert bool((margins >= GOAL).all())
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    moved = shifts.apply(x, torch.tensor([7, 1, 7, 4]))
    torch.testing.assert_close(moved[2], (x[2] + shifts.shifts[2]).clamp(0, 1))
    torch.testing.assert_close(moved[1], (x[1] + shifts.shifts[0]).clamp(0, 1))


def test_saved_activations_of_the_digits_cnn_lie_between_the_distinct_tensors_and_twice_them(digits_classifier):
    # conv1 input (1x8x8), two ReLU outputs (32x8x8, 64x8x8), the pool's int64 indices (64x4x4), fc1's ReLU (128):
    # each is saved at least once; a ReLU output is also saved by the next layer, so at most twice. Weights: never.
    distinct = 4 * (64 + 32 * 64 + 64 * 64 + 128) + 8 * 64 * 16
    measured = saved_activation_bytes_per_row(digits_classifier, torch.rand(1, 1, 8, 8))
    assert distinct <= measured <= 2 * distinct


@pytest.mark.parametrize("bytes_per_row,budget,expected", [(100, 1000, 10), (100, 99, 1), (100, 10**9, 1024), (3, 10, 3)])
def test_chunk_rows_is_the_budget_over_the_row_clamped(bytes_per_row, budget, expected):
    assert chunk_rows(bytes_per_row, activation_budget_bytes=budget, batch_size=1024) == expected


def test_the_attack_runs_no_chunk_larger_than_the_budget_allows(digits_classifier):
    spied = load_classifier("digits")
    batches = []
    network_call = spied.logits_from_model_input

    def record(model_input):
        batches.append(model_input.shape[0])
        return network_call(model_input)

    spied.logits_from_model_input = record
    start = open_images("noise:uniform", n=20, seed=4).load_all()
    row_bytes = saved_activation_bytes_per_row(digits_classifier, digits_classifier.preprocess(start[:1]))
    chunked = InflateAttack(steps=3, splits=2, activation_budget_bytes=3 * row_bytes)(spied, start)
    assert max(batches) == 3
    whole = InflateAttack(steps=3, splits=2)(digits_classifier, start)
    assert chunked.steps == whole.steps and chunked.gradient_evaluations == whole.gradient_evaluations
    assert chunked.final_is == pytest.approx(whole.final_is, rel=1e-5)
