"""What the loader decided reaches the user: ``isgame: note:`` lines on stderr, ``notes`` in the JSON, and
``--range`` passed through score, fid and check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error

from isgame.scoring.errors import InvalidInputError

IMAGES_0_255 = np.random.default_rng(5).integers(0, 256, size=(40, 1, 8, 8)).astype(np.float32)


@pytest.fixture()
def float_255(tmp_path):
    np.save(tmp_path / "f255.npy", IMAGES_0_255)
    np.save(tmp_path / "u8.npy", IMAGES_0_255.astype(np.uint8)[:, 0])
    return tmp_path


def notes_of(result) -> list[str]:
    return [line.removeprefix("isgame: note: ") for line in result.stderr.splitlines() if line.startswith("isgame: note: ")]


def test_score_prints_the_detected_range_and_reports_it_in_json(cli, float_255):
    result = cli("score", float_255 / "f255.npy", "--splits", "2", "--quiet", "--json", "-")
    assert result.exit_code == 0, result.stderr
    (note,) = notes_of(result)
    assert "read as 0-255 (max 255 > 1.5); pass --range 0-1 if they are 0-1" in note
    payload = json.loads(result.stdout)
    assert payload["notes"] == [note.replace("--range 0-1", "value_range=0-1")]
    # the same images as uint8 (N, H, W): the same score, to float32 rounding
    same = json.loads(cli("score", float_255 / "u8.npy", "--splits", "2", "--quiet", "--json", "-").stdout)
    assert payload["is_mean"] == pytest.approx(same["is_mean"], rel=1e-5)
    assert same["notes"] == []


def test_range_option_takes_effect(cli, float_255):
    forced = cli("score", float_255 / "f255.npy", "--splits", "2", "--quiet", "--range", "0-255", "--json", "-")
    assert forced.exit_code == 0 and notes_of(forced) == []
    assert_one_line_error(cli("score", float_255 / "f255.npy", "--splits", "2", "--range", "0-1"),
                          "expected [0, 1]")
    dialects = cli("score", float_255 / "f255.npy", "--dialect", "all", "--range", "0-1")
    assert_one_line_error(dialects, "expected [0, 1]")
    table = cli("score", float_255 / "f255.npy", "--dialect", "openai", "--json", "-")
    assert table.exit_code == 0, table.stderr
    assert "read as 0-255" in json.loads(table.stdout)["notes"][0] and len(notes_of(table)) == 1


def test_fid_notes_cover_both_sources(cli, float_255):
    result = cli("fid", float_255 / "f255.npy", "digits:test", "--n", "1000", "--quiet", "--json", "-")
    assert result.exit_code == 0, result.stderr
    notes = notes_of(result)
    assert len(notes) == 3 and "read as 0-255" in notes[0]
    assert "f255.npy: --n 1000 asks for more than its 40 images" in notes[1]
    assert "digits:test: --n 1000 asks for more than its 540 images" in notes[2]
    assert len(json.loads(result.stdout)["notes"]) == 3
    forced = cli("fid", float_255 / "f255.npy", float_255 / "u8.npy", "--range", "0-255", "--quiet", "--json", "-")
    assert json.loads(forced.stdout)["fid"] == pytest.approx(0.0, abs=1e-6)


def test_check_passes_the_range_and_prints_its_notes(cli, float_255, monkeypatch):
    import isgame.app.check as check

    received = {}

    class Loaded(Exception):
        """Stops run_check once the samples are loaded: only what it loaded matters here."""

    def fake_check_claim(samples, **kwargs):
        received["samples"] = samples
        raise Loaded

    monkeypatch.setattr(check, "check_claim", fake_check_claim)
    with pytest.raises(InvalidInputError, match="expected \\[0, 1\\]"):  # an explicit range reaches the loader
        check.run_check(str(float_255 / "f255.npy"), claimed=5.0, value_range="0-1")
    with pytest.raises(Loaded):
        check.run_check(str(float_255 / "f255.npy"), claimed=5.0, value_range="0-255")
    torch.testing.assert_close(received["samples"].double(), torch.from_numpy(IMAGES_0_255.astype(np.float64) / 255.0), atol=1e-7, rtol=0)

    calls = {}

    def fake_run_check(samples, **kwargs):
        calls.update(kwargs, samples=samples)
        return check.CheckReport(name="check", result=FakeResult(), notes=("x.npy: a note",))

    monkeypatch.setattr(check, "run_check", fake_run_check)
    result = cli("check", float_255 / "f255.npy", "--claimed", "5", "--range", "0-1", "--json", "-")
    assert result.exit_code == 0, result.stderr
    assert calls["value_range"] == "0-1"
    assert notes_of(result) == ["x.npy: a note"]
    assert json.loads(result.stdout)["notes"] == ["x.npy: a note"]


class FakeResult:
    """Just what the check command prints: a reproduced, meaningful claim (exit code 0)."""

    verdict = "reproduced, meaningful"
    spread = (1.0, 2.0)
    reasons = ()
    claimed, claimed_std = 1.5, 0.0
    reproduced = meaningful = True
    reproduced_reasons = meaningful_reasons = ()
    protocol = {"dialect": "openai", "splits": 10, "n": 50, "is_mean": 1.5, "tolerance": 0.1}

    def to_dict(self):
        return {"verdict": self.verdict}
