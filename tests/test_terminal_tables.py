"""Terminal tables never cut a number: at 120 and 80 columns, with a long source path, every value of every table
(and every header) is printed whole; a table too wide is folded into several."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from rich.console import Console, Group

from isgame.app.tables import bounded_table, inflate_table, matrix_table, score_table, short_path, toy_table

LONG_PATH = ("/data/experiments/a_very_long_directory_name_for_generated_samples/run_2024_17_checkpoint_final/"
             "samples_epoch_0500.npy")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?%?")


def _tables(renderable) -> list:
    return list(renderable.renderables) if isinstance(renderable, Group) else [renderable]


def _rendered(renderable, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def _assert_whole(renderable, width: int) -> None:
    shown = _rendered(renderable, width)
    assert "…" not in shown.replace("…/", "")  # rich's cut mark; a shortened path keeps its own "…/"
    for table in _tables(renderable):
        for column in table.columns[1:]:  # the first is the label: a path or a name, which may wrap
            header = str(column.header)
            assert header in shown, (width, header)
            for cell in column._cells:
                for number in NUMBER.findall(re.sub(r"\[[^\]]*\]", "", str(cell))):  # markup removed
                    assert re.search(rf"(?<![\w.]){re.escape(number)}(?![\w.])", shown), (width, header, number)


def _score_report(source: str, is_mean: float):
    result = SimpleNamespace(n=50000, num_classes=1000, splits=10, is_mean=is_mean, is_std=0.4321987,
                             mutual_information_bits=3.2186123, mutual_information_stderr_bits=0.0107123,
                             improved_is=9.3090456, marginal_entropy_bits=3.3210789,
                             conditional_entropy_bits=0.1024321)
    return SimpleNamespace(source=source, result=result)


def _inflate_report():
    def run(name, final):
        return SimpleNamespace(optimizer=name, steps=50, seconds=6.18, gradient_evaluations_per_sample=29.14,
                               initial_is=1.9787, final_is=final, num_classes=1000, final_is_uint8=final - 0.0002,
                               final_conditional_entropy_bits=3.23e-4, n=1000,
                               steps_to_fraction_of_k=lambda fraction: 3)
    first = run("newton", 999.2584)
    return SimpleNamespace(result=first, noise="uniform", real_is=8.5255,
                           comparison={"sign": run("sign", 998.9969), "adam-logit": run("adam-logit", 996.4)})


def _bounded_report():
    def score(epsilon, value):
        return SimpleNamespace(epsilon=epsilon, is_mean=value, strategy="direct", improved_is=9.5686,
                               labels_changed=0.035, mean_l2_distance=0.3843)
    scores = [score(e / 255, 7.5448 + e / 10) for e in (0, 1, 2, 4, 8, 16, 32)]
    search = SimpleNamespace(epsilon=9.51 / 255, bracket=(8 / 255, 9.51 / 255))
    sweep = SimpleNamespace(strategy="auto", protocol=SimpleNamespace(describe=lambda: "openai, 10 splits"),
                            scores=scores, cycling=scores, baseline=scores, norm="linf",
                            thresholds={"1": search, "5": search, "10": search}, clean_score=7.5448,
                            ceiling=SimpleNamespace(labels_kept=7.9293, labels_changed=10.0))
    return SimpleNamespace(sweeps=[sweep], source=LONG_PATH)


def _toy_report():
    generator = SimpleNamespace(name="plus-minus-infinity", inception_score=1.999998, inception_score_mc=1.999997,
                                mc_stderr=8.6e-06, marginal_class1=0.5, conditional_entropy_nats=0.0164)
    return SimpleNamespace(result=SimpleNamespace(n=100_000, generators=[generator] * 3))


def _matrix_report():
    metrics = ["IS", "exp(I)", "IS∞", "FID", "FID∞", "KID", "RBF-MMD", "SWD", "FLD", "FID-b", "precision", "recall",
               "density", "coverage", "Vendi", "wavelet FD", "C_T", "authenticity"]
    games = ["held-out real", "mode dropping (K/2 classes)", "ε-bounded attack (8/255)"]
    cell = SimpleNamespace(value=-0.000537123, verdict="missed")
    return SimpleNamespace(result=SimpleNamespace(metrics=metrics, games=games, alpha=0.05,
                                                  cells={g: {m: cell for m in metrics} for g in games}))


TABLES = {
    "score": lambda: score_table([_score_report(LONG_PATH, 1.3561234), _score_report("digits:test", 2.5840123)]),
    "inflate": lambda: inflate_table(_inflate_report()),
    "bounded": lambda: bounded_table(_bounded_report()),
    "toy": lambda: toy_table(_toy_report()),
    "matrix": lambda: matrix_table(_matrix_report()),
}


@pytest.mark.parametrize("width", [120, 80])
@pytest.mark.parametrize("name", list(TABLES))
def test_no_table_cuts_a_number(name, width):
    _assert_whole(TABLES[name](), width)


def test_score_table_shows_the_tail_of_a_long_path_and_every_header():
    shown = _rendered(TABLES["score"](), 120)
    assert "1.3561 ± 0.4322" in shown and "2.5840 ± 0.4322" in shown and "H(y|x) bits" in shown
    assert "…/samples_epoch_0500" in shown  # the path's tail, which may wrap
    narrow = _rendered(TABLES["score"](), 80)
    assert narrow.count("source") == 2  # folded in two, the label column repeated


def test_short_path_keeps_the_tail():
    assert short_path("digits:test") == "digits:test"
    shortened = short_path(LONG_PATH, 36)
    assert len(shortened) <= 36 and shortened.startswith("…/") and shortened.endswith("samples_epoch_0500.npy")
