"""The ``isgame`` CLI: JSON contract, user errors as one line, the audit report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from helpers import approx_float32, assert_one_line_error, reference_scores
from PIL import Image

from isgame.app.audit import AUDIT_FAST_SAMPLES
from isgame.app.scoring_commands import score_source
from isgame.scoring.runtime.atomic_io import write_json_atomic
from isgame.scoring.sources.samples import open_images

SCORE_KEYS = {
    "n", "num_classes", "splits", "is_mean", "is_std", "mutual_information_nats", "mutual_information_bits",
    "improved_is", "marginal_entropy_bits", "conditional_entropy_bits",
}


def test_score_json_to_stdout_is_pure_json(cli, digits_classifier):
    result = cli("score", "digits:test", "--json", "-", "--splits", "5")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert SCORE_KEYS <= payload.keys()
    assert payload["n"] == 540 and payload["num_classes"] == 10 and payload["splits"] == 5
    # The numbers are those of the classifier's logits of the same images through the independent scipy float64 IS
    # (helpers), up to float32 rounding: the CLI classified in batches of its own, the test in one.
    with torch.no_grad():
        logits = digits_classifier(open_images("digits:test").load_all()).double().numpy()
    expected = reference_scores(logits, 5)
    assert payload["is_mean"] == approx_float32(expected["is_mean"])
    assert payload["is_std"] == approx_float32(expected["is_std"], error_scale=expected["is_mean"])
    assert payload["mutual_information_nats"] == approx_float32(expected["mi_nats"])
    assert payload["conditional_entropy_bits"] == approx_float32(expected["conditional_bits"])
    assert "Inception Score" in result.stderr  # the table moved to stderr


def test_score_logits_file_matches_the_library(cli, tmp_path):
    from isgame.scoring.metrics.inception_score import inception_score

    logits = np.random.default_rng(0).normal(size=(300, 12)) * 3
    np.save(tmp_path / "logits.npy", logits)
    result = cli("score", tmp_path / "logits.npy", "--input", "logits", "--splits", "3", "--json", tmp_path / "out.json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads((tmp_path / "out.json").read_text())
    expected = inception_score(logits, splits=3)
    assert payload["is_mean"] == pytest.approx(expected.is_mean, rel=1e-12)
    assert payload["mutual_information_bits"] == pytest.approx(expected.mutual_information_bits, rel=1e-12)


def test_score_options_take_effect(cli):
    """Every option changes the result the way the library does with the same arguments."""
    args = ["--n", "64", "--seed", "9", "--shuffle", "--splits", "4", "--batch-size", "8", "--classifier", "digits-b"]
    payload = json.loads(cli("score", "noise:gaussian", *args, "--quiet", "--json", "-").stdout)
    expected = score_source("noise:gaussian", n=64, seed=9, shuffle=True, splits=4, batch_size=8,
                            classifier_name="digits-b", progress=False)
    assert payload["split_scores"] == expected.result.split_scores
    assert (payload["n"], payload["splits"], payload["shuffle"], payload["seed"]) == (64, 4, True, 9)
    assert payload["classifier"]["name"] == "digits-b"
    default = score_source("noise:gaussian", n=64, seed=9, splits=4, progress=False)
    assert default.result.split_scores != expected.result.split_scores  # digits-b and the shuffle both moved it


def test_shuffle_and_seed_take_effect(cli):
    outputs = [json.loads(cli("score", "digits:test", "--json", "-", *extra).stdout)["split_scores"]
               for extra in ([], ["--shuffle"], ["--shuffle", "--seed", "1"], ["--shuffle"])]
    assert outputs[0] != outputs[1] and outputs[1] != outputs[2] and outputs[0] != outputs[2]
    assert outputs[1] == outputs[3]


def _save(tmp_path, name, array):
    np.save(tmp_path / name, array)
    return tmp_path / name


@pytest.mark.parametrize(
    "make_args,fragments",
    [
        (lambda p: [_save(p, "nan.npy", np.array([[0.0, 1.0], [0.0, 1.0], [np.nan, 1.0]])), "--input", "logits", "--splits", "1"],
         ["row 2", "NaN or inf"]),
        (lambda p: [_save(p, "inf.npy", np.array([[0.0, np.inf], [0.0, 1.0]])), "--input", "logits", "--splits", "1"],
         ["row 0"]),
        (lambda p: [_save(p, "neg.npy", np.array([[0.5, 0.5], [1.5, -0.5]])), "--input", "probs", "--splits", "1"],
         ["row 1", "negative probability"]),
        (lambda p: [_save(p, "sum.npy", np.array([[0.5, 0.5], [0.3, 0.3]])), "--input", "probs", "--splits", "1"],
         ["row 1", "within 0.0001"]),
        (lambda p: [_save(p, "k1.npy", np.zeros((4, 1))), "--input", "logits", "--splits", "1"], ["K >= 2"]),
        (lambda p: [_save(p, "few.npy", np.zeros((3, 5))), "--input", "logits", "--splits", "10"],
         ["N = 3", "--splits 3"]),
        (lambda p: [_save(p, "rank.npy", np.zeros(7)), "--input", "logits"], ["shape (N, K)", "(7,)"]),
        (lambda p: ["digits:test", "--splits", "1000"], ["N = 540", "splits = 1000"]),
        (lambda p: ["nowhere/at/all"], ["not found"]),
        (lambda p: ["digits:test", "--classifier", "resnet"], ["unknown classifier", "digits-b"]),
        (lambda p: ["noise:uniform", "--n", "0"], ["--n must be >= 1"]),
        (lambda p: ["digits:test", "--splits", "0"], ["--splits must be >= 1"]),
        (lambda p: ["digits:test", "--batch-size", "0"], ["--batch-size must be >= 1"]),
        (lambda p: ["digits:test", "--input", "logits"], ["with --input logits/probs pass a .npy"]),
    ],
    ids=["nan", "inf", "negative-probs", "rows-not-summing", "k-below-2", "n-below-splits-array",
         "wrong-rank", "n-below-splits-images", "missing", "unknown-classifier", "n-zero", "splits-zero",
         "batch-zero", "logits-from-builtin"],
)
def test_bad_input_gives_one_line_error(cli, tmp_path, make_args, fragments):
    assert_one_line_error(cli("score", *make_args(tmp_path)), *fragments)


def test_text_file_named_png_and_truncated_png(cli, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "good.png")
    (folder / "fake.png").write_text("this is not an image")
    assert_one_line_error(cli("score", folder, "--splits", "1"), "fake.png", "not a readable image")
    (folder / "fake.png").unlink()
    data = (folder / "good.png").read_bytes()
    (folder / "trunc.png").write_bytes(data[: len(data) // 2])
    assert_one_line_error(cli("score", folder, "--splits", "1"), "trunc.png")


def test_json_to_a_folder_is_refused_and_existing_reports_survive(cli, tmp_path):
    assert_one_line_error(cli("score", "digits:test", "--json", tmp_path), "is a folder")
    report = tmp_path / "report.json"
    write_json_atomic(report, {"kept": True})
    with pytest.raises(TypeError):  # not serialisable: refused before anything is written
        write_json_atomic(report, {"bad": object()})
    assert json.loads(report.read_text()) == {"kept": True}
    write_json_atomic(tmp_path / "undefined.json", {"std": float("nan"), "rows": [1.0, float("inf")]})
    assert json.loads((tmp_path / "undefined.json").read_text()) == {"std": None, "rows": [1.0, None]}
    (tmp_path / "undefined.json").unlink()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left behind


@pytest.mark.slow
def test_audit_writes_report_and_figures(audit_run):
    out, result = audit_run
    assert result.exit_code == 0, result.stderr
    assert "report written to" in result.stdout and "Headline" in result.stdout
    report = json.loads((out / "report.json").read_text())
    sources = [s["source"] for s in report["scores"]]
    assert sources == ["digits:test", "digits:train", "noise:uniform", "noise:gaussian"]
    by_source = {s["source"]: s for s in report["scores"]}
    # Real digits are confidently classified; noise is not.
    assert by_source["digits:test"]["conditional_entropy_bits"] < by_source["noise:uniform"]["conditional_entropy_bits"]
    for name, figure in report["figures"].items():
        with Image.open(out / figure) as image:
            assert image.size[0] > 100, name
    assert len(report["figures"]) >= 8


@pytest.mark.slow
def test_audit_sections_tell_the_story(audit_run):
    out, _ = audit_run
    report = json.loads((out / "report.json").read_text())
    headline = report["headline"]
    assert headline["inflated_is"] >= 0.999 * headline["num_classes"] > headline["real_is"] > headline["noise_is"]
    assert headline["real_is"] == pytest.approx(report["scores"][0]["is_mean"])
    assert report["inflate"]["steps_to_999_of_k"] <= 20
    assert {s["norm"] for s in report["bounded"]["sweeps"]} == {"linf"}  # the fast profile's (full: L2 too)
    # The headline in three numbers: noise -> K in n steps, the L∞ ε for +5% on held-out data, replay against it.
    numbers = headline["numbers"]
    assert numbers["noise_to_k"]["steps"] == report["inflate"]["steps_to_999_of_k"]
    sweep = report["bounded"]["sweeps"][0]
    assert numbers["epsilon_for_5_percent"]["epsilon"] == sweep["epsilon_for_percent"]["5"] is not None
    assert numbers["training_replay"]["train_is"] == pytest.approx(report["scores"][1]["is_mean"])
    assert numbers["training_replay"]["held_out_is"] == pytest.approx(report["scores"][0]["is_mean"])
    assert "How easily the Inception Score is gamed here" in (out / "report.html").read_text()  # the answer card
    scores = [row["inception_score"] for row in sweep["epsilons"]]
    assert scores == sorted(scores) and scores[-1] > sweep["clean_score"]
    # The fast profile (the fixture's) reaches every section: the sizes it sets are the ones used, and said so.
    assert report["settings"]["fast"] is True and report["settings"]["n"] == AUDIT_FAST_SAMPLES
    assert {s["n"] for s in report["bounded"]["sweeps"]} == {AUDIT_FAST_SAMPLES} == {report["matrix"]["n"]}
    assert "Fast profile:" in (out / "report.html").read_text()
    assert [g["name"] for g in report["toy"]["generators"]][1] == "plus-minus-infinity"
    assert set(report["probes"]) == {"memorization", "noise", "sensitivity", "domain"}
    noise_rows = {r["name"]: r for r in report["probes"]["noise"]["rows"]}
    # The noise baseline reuses the inflate section's images: same conditional entropy, up to the float32 rounding
    # of classifying them in other batches.
    assert noise_rows["inflated noise"]["conditional_entropy_bits"] == approx_float32(
        report["inflate"]["final_conditional_entropy_bits"])
    # The leaderboard at the audit's reduced size: every metric on both degraded sources, its figure and section.
    from isgame.app.audit import AUDIT_LEADERBOARD_GRID_255, AUDIT_LEADERBOARD_SAMPLES

    board = report["robustness"]
    assert board["n"] == AUDIT_LEADERBOARD_SAMPLES and board["epsilons_255"] == pytest.approx(AUDIT_LEADERBOARD_GRID_255)
    assert {(e["metric"], e["source"]) for e in board["entries"]} == {
        (m, s) for m in board["metrics"] for s in ("honest KDE", "uniform noise")}
    assert (out / report["figures"]["robustness_figure"]).stat().st_size > 0
    page = (out / "report.html").read_text()
    assert "id='leaderboard'" in page and "ε that fools each metric" in page


def test_source_scores_display_draws_the_numbers():
    import matplotlib

    matplotlib.use("Agg")
    from isgame.app.audit import SourceScoresDisplay

    display = SourceScoresDisplay(["a", "b"], [2.0, 5.0], [0.1, 0.2], [2.5, 5.5], [1.0, 3.0], [0.5, 0.1], 10).plot()
    heights = [patch.get_height() for patch in display.axes_[0].patches]
    assert heights == [2.0, 5.0, 2.5, 5.5]
    assert display.axes_[0].get_lines()[-1].get_ydata()[0] == 10  # the K line
    assert display.figure_ is display.axes_[1].figure


def test_ctrl_c_mid_audit_keeps_finished_files_and_leaves_no_partial_ones(cli, tmp_path, monkeypatch):
    import isgame.app.audit

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(isgame.app.audit, "run_inflate", interrupted)  # the second section: the scores are done
    out = tmp_path / "run"
    result = cli("audit", "--out", out, "--quiet")
    assert result.exit_code == 130
    assert "Traceback" not in result.stderr and "interrupted" in result.stderr
    written = {p.name for p in out.iterdir()}
    assert written == {"source_scores.png"}  # the first section's figure, and no temporary file beside it
    with Image.open(out / "source_scores.png") as image:
        image.verify()  # complete, not truncated
    assert not (out / "report.json").exists()


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    import os

    from isgame.scoring.runtime.atomic_io import write_bytes_atomic

    target = tmp_path / "report.json"
    target.write_text("old")

    def interrupted_replace(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def _commands(group, path=()):
    """(path, click command) of every command of the app, sub-commands included."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer vendors click, so no isinstance on click.Group)
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _help_of(cli_runner_args):
    from typer.testing import CliRunner

    from isgame.cli import app

    result = CliRunner().invoke(app, [*cli_runner_args, "--help"], env={"COLUMNS": "1000"})  # no wrapping
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.split())


def test_every_help_string_survives_rich_markup():
    """Rich markup once swallowed "[default: 10; ...]": every option's help must reach the screen whole."""
    import typer

    from isgame.cli import app

    commands = list(_commands(typer.main.get_command(app)))
    assert len(commands) >= 10
    for path, command in commands:
        shown = _help_of(path)
        for param in command.params:
            if getattr(param, "help", None) and not getattr(param, "hidden", False):
                expected = " ".join(param.help.replace("\\[", "[").split())
                assert expected in shown, f"isgame {' '.join(path)} {param.name}: {expected!r} not in its --help"
    assert "Splits [default: 10; --dialect: its own]." in _help_of(["score"])
    assert "Held-out real images [digits: digits:test]" in " ".join(_help_of(["check"]).split())


def test_classifier_weights_and_seed_help_say_what_they_do():
    import typer

    from isgame.cli import app
    from isgame.scoring.classifiers import CLASSIFIER_NAMES

    for path, command in _commands(typer.main.get_command(app)):
        helps = {param.name: param.help or "" for param in command.params}
        if "classifier" in helps:  # the option's help is one line; the command's help lists the forms
            shown = _help_of(path)
            for form in (*CLASSIFIER_NAMES, "torchscript:PATH?...", "package.module:function?...", "weights_only=True"):
                assert form in shown, (path, form)
        if "weights" in helps:
            assert ".pth" in helps["weights"] and "safetensors" in helps["weights"] and "weights_only=True" in helps["weights"]
        if "seed" in helps and path != ("train-digits",):
            # Only score splits after a shuffle; elsewhere a seed that "shuffles the splits" would be a false promise.
            assert ("shuffle" in helps["seed"]) == (path == ("score",)), (path, helps["seed"])
    seeds = {path: {p.name: p.help for p in command.params}["seed"] for path, command in
             _commands(typer.main.get_command(app)) if "seed" in {p.name for p in command.params}}
    assert len(set(seeds.values())) == len(seeds)  # each command says what its own seed draws


def test_check_help_documents_its_exit_codes():
    from isgame.cli import CHECK_EXIT_CODES, EXIT_USER_ERROR

    shown = _help_of(["check"])
    meaning = {(True, True): "reproduced and meaningful", (False, True): "not reproduced",
               (True, False): "reproduced but not meaningful", (False, False): "neither reproduced nor meaningful"}
    assert sorted(CHECK_EXIT_CODES.values()) == [0, 3, 4, 5]
    for answers, code in CHECK_EXIT_CODES.items():
        assert f"{code} {meaning[answers]}" in shown
    assert f"{EXIT_USER_ERROR} user error" in shown


def test_undefined_figures_are_null_in_json_not_a_crash(cli, tmp_path):
    """A std over one split and the stderr of one KID subset are undefined: strict JSON says null."""
    dialects = cli("score", "digits:test", "--dialect", "all", "--splits", "1", "--quiet", "--json", "-")
    assert dialects.exit_code == 0, dialects.stderr
    torchmetrics = next(row for row in json.loads(dialects.stdout)["dialects"] if row["dialect"] == "torchmetrics")
    assert torchmetrics["is_std"] is None and torchmetrics["splits"] == 1
    kid = cli("metrics", "digits:test", "noise:uniform", "--n", "100", "--metric", "kid", "--kid-subsets", "1",
              "--quiet", "--json", tmp_path / "kid.json")
    assert kid.exit_code == 0, kid.stderr
    assert "NaN" not in (tmp_path / "kid.json").read_text()


def test_seed_sets_the_permutation_of_every_shuffling_dialect_with_all(cli):
    def dialects(*extra):
        payload = json.loads(cli("score", "digits:test", "--dialect", "all", "--quiet", "--json", "-", *extra).stdout)
        return {row["dialect"]: row["is_mean"] for row in payload["dialects"]}

    default, seeded = dialects(), dialects("--seed", "5")
    assert default["torch-fidelity"] != seeded["torch-fidelity"] and default["torchmetrics"] != seeded["torchmetrics"]
    assert default["openai"] == seeded["openai"]  # contiguous splits: no permutation to seed


@pytest.mark.parametrize("command, code", [
    (["score", "digits:test", "--quiet"], 0),
    (["check", "digits:test", "--claimed", "9.4", "--n", "60", "--no-attack"], 3),
])
def test_a_reader_that_closes_stdout_costs_neither_the_json_file_nor_the_exit_code(tmp_path, command, code):
    """``isgame ... --json FILE | head -1``: the reader leaves before the tables are printed (``true`` never reads
    at all), yet the file is written and the pipeline's status is the command's own."""
    import shlex
    import subprocess
    import sys

    target = tmp_path / "result.json"
    line = " ".join(shlex.quote(part) for part in [sys.executable, "-m", "isgame.cli", *command, "--json", str(target)])
    if command[0] == "check":
        line += f" --out {shlex.quote(str(tmp_path / 'check'))}"
    run = subprocess.run(["bash", "-c", f"set -o pipefail; {line} | true"], capture_output=True, text=True, timeout=300)
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr
    assert json.loads(target.read_text())["provenance"]["command"] == command[0]


#: Typer's own line under an option's help: its default or that it is required
TYPER_NOTE = re.compile(r"^\[(default: .*|required)\]$")


def _option_rows(shown: str) -> list[list[str]]:
    """Each option's (and argument's) lines in the panels of a rich --help: a row starts where the name column is
    filled (at most 6 spaces in), continues on the lines indented to the help column."""
    rows, inside = [], False
    for line in shown.splitlines():
        if line.startswith("╭") or line.startswith("╰"):
            inside = line.startswith("╭")
        elif inside and line.startswith("│"):
            body = line[1:-1].rstrip()
            if len(body) - len(body.lstrip()) <= 6:
                rows.append([body])
            elif rows:
                rows[-1].append(body.strip())
    return rows


def test_every_option_help_reads_in_80_columns():
    """At COLUMNS=80 every option's help takes at most 2 lines of its column, not counting the line Typer adds
    for its default ("[default: 540]") or "[required]"; longer explanations are in the command's own help."""
    import typer
    from typer.testing import CliRunner

    from isgame.cli import app

    commands = list(_commands(typer.main.get_command(app)))
    too_long = []
    for path, _ in commands:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        assert result.exit_code == 0, result.output
        assert max(len(line) for line in result.stdout.splitlines()) <= 80
        rows = _option_rows(result.stdout)
        assert len(rows) >= 2, path
        for row in rows:
            help_lines = [row[0]] + [line for line in row[1:] if not TYPER_NOTE.match(line)]
            if len(help_lines) > 2:
                too_long.append((" ".join(path), row[0].split()[0], row[1:]))
    assert not too_long, too_long
