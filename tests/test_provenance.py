"""Provenance: every JSON says how its number was made; the input fingerprint is hashed while it streams."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from helpers import approx_float32
from PIL import Image

from isgame.app.attack_commands import run_toy
from isgame.app.metrics_command import compute_metrics
from isgame.app.scoring_commands import fid_between, score_in_dialects, score_source
from isgame.scoring.classifiers.digits import shipped_weights_path
from isgame.scoring.domains import digits_domain
from isgame.scoring.provenance import _FILE_HASHES, cached_file_sha256, domain_provenance
from isgame.scoring.sources.digits_data import digits_split

PROVENANCE_KEYS = {"command", "isgame_version", "classifier", "num_classes", "preprocessing", "dtype", "device",
                   "precision", "seed", "dialect", "n", "splits", "shuffled", "inputs"}


def array_digest(array: np.ndarray) -> str:
    """The array-bytes fingerprint written out by hand: header (dtype, row shape), then the rows' bytes."""
    header = f"isgame-array-bytes-v1|{array.dtype.str} {tuple(array.shape[1:])}|".encode()
    return hashlib.sha256(header + np.ascontiguousarray(array).tobytes()).hexdigest()


def fingerprint_of(payload: dict, role: str = "samples") -> dict:
    return next(record for record in payload["provenance"]["inputs"] if record["role"] == role)["fingerprint"]


@pytest.mark.parametrize("batch_size", [50, 256])
def test_score_provenance_of_digits(batch_size):
    payload = score_source("digits:test", batch_size=batch_size, progress=False, seed=3).to_dict()
    provenance = payload["provenance"]
    assert set(provenance) == PROVENANCE_KEYS
    weights = hashlib.sha256(shipped_weights_path("digits").read_bytes()).hexdigest()
    assert provenance["classifier"]["weights_sha256"] == weights
    assert (provenance["num_classes"], provenance["n"], provenance["splits"], provenance["seed"]) == (10, 540, 10, 3)
    assert provenance["preprocessing"]["resize"] == "bilinear" and provenance["preprocessing"]["antialias"] is True
    assert (provenance["dtype"], provenance["device"], provenance["precision"]) == ("float32", "cpu", "fp32")
    # Independent of the batch size: the same bytes stream in the same order.
    assert fingerprint_of(payload)["sha256"] == array_digest(digits_split().test_images.numpy())
    # Numbers unchanged, up to the float32 network's rounding on this batch size and CPU.
    assert payload["is_mean"] == approx_float32(8.674735193854696)


def test_logits_fingerprint_covers_the_first_n_rows(tmp_path):
    logits = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    np.save(tmp_path / "logits.npy", logits)
    payload = score_source(str(tmp_path / "logits.npy"), input_kind="logits", n=120, batch_size=50,
                           progress=False).to_dict()
    assert payload["provenance"]["classifier"] is None and payload["provenance"]["num_classes"] == 5
    assert fingerprint_of(payload) == {"scheme": "array-bytes", "rows": 120, "sha256": array_digest(logits[:120])}
    # The dialect path reads the same rows and gives the same fingerprint.
    table = score_in_dialects(str(tmp_path / "logits.npy"), "openai", input_kind="logits", n=120, progress=False)
    assert fingerprint_of(table.to_dict()) == fingerprint_of(payload)


def test_folder_fingerprint_hashes_sorted_names_sizes_and_contents(tmp_path):
    folder = tmp_path / "images"
    (folder / "b").mkdir(parents=True)
    for name, value in (("a.png", 10), ("b/c.png", 200)):
        Image.fromarray(np.full((8, 8), value, np.uint8)).save(folder / name)
    expected = hashlib.sha256(b"isgame-files-v1||")
    for name in ("a.png", "b/c.png"):
        data = (folder / name).read_bytes()
        expected.update(f"{name}\0{len(data)}\0".encode() + data)
    payload = score_source(str(folder), splits=1, progress=False).to_dict()
    assert fingerprint_of(payload) == {"scheme": "files", "rows": 2, "sha256": expected.hexdigest()}
    (folder / "b" / "c.png").rename(folder / "b" / "d.png")  # same bytes, another name
    assert fingerprint_of(score_source(str(folder), splits=1, progress=False).to_dict())["sha256"] != expected.hexdigest()


def test_weights_hash_is_cached_by_path_mtime_and_size(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"first")
    assert cached_file_sha256(path) == hashlib.sha256(b"first").hexdigest()
    cached_keys = [key for key in _FILE_HASHES if key[0] == str(path.resolve())]
    assert len(cached_keys) == 1
    _FILE_HASHES[cached_keys[0]] = "stale"  # a second call with the same (path, mtime, size) does not re-read
    assert cached_file_sha256(path) == "stale"
    path.write_bytes(b"second!")  # another size: hashed again
    assert cached_file_sha256(path) == hashlib.sha256(b"second!").hexdigest()


def test_fid_metrics_toy_and_domain_carry_provenance():
    fid = fid_between("digits:test", "noise:uniform", n=40, progress=False)
    assert fid["provenance"]["command"] == "fid"
    assert fingerprint_of(fid, "real")["sha256"] == array_digest(digits_split().test_images[:40].numpy())
    assert fingerprint_of(fid, "fake")["rows"] == 40 and fingerprint_of(fid, "fake")["sha256"] is not None
    metrics = compute_metrics("digits:test", "digits:train", metrics=["fid"], n=30, progress=False).to_dict()
    assert [r["role"] for r in metrics["provenance"]["inputs"]] == ["real", "fake"]
    assert run_toy(n=200).to_dict()["provenance"]["n"] == 200
    domain = digits_domain()
    inputs = domain_provenance("matrix", domain, seed=0).to_dict()["inputs"]
    assert [(r["role"], r["fingerprint"]["rows"]) for r in inputs] == [("train", 1257), ("real", 540)]
    json.dumps(fid) and json.dumps(metrics)  # JSON-ready


def test_cli_score_json_has_provenance(cli):
    result = cli("score", "digits:test", "--json", "-", "-q", "--splits", "5")
    assert result.exit_code == 0, result.stderr
    provenance = json.loads(result.stdout)["provenance"]
    assert provenance["splits"] == 5 and provenance["inputs"][0]["fingerprint"]["sha256"]
