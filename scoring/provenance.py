"""Provenance: how a number was made, in every JSON the toolkit writes.

Two IS figures are comparable only when their protocols match (the weights, 1000 or 1008 classes,
the resize, the dtype, the sample order, N and the splits): pytorch-fid #11/#16/#17,
torchmetrics #1620, openai/guided-diffusion #165. A :class:`Provenance` records them once, the
same way for every command; ``isgame compare`` (:mod:`isgame.scoring.compare`) reads it back.

What is recorded, and where it is read from (nothing is assumed):

* ``isgame_version``: the installed package's version;
* ``classifier``: its name, the SHA-256 of its weights file (the loaders hash the file they load;
  :func:`cached_file_sha256` hashes a file once per (path, mtime, size)), K, D;
* ``preprocessing``: the classifier's resize filter and antialias, its input size and channels,
  what its network does to the [0, 1] input (normalisation), and the rounding applied on the way
  (none: the loaders hand float32 in [0, 1] on; the torchmetrics dialect truncates to uint8);
* ``dtype``, ``device``, ``precision`` (autocast precision; fp32 unless the classifier says otherwise);
* ``seed``, ``dialect``, ``n``, ``splits``, ``shuffled``;
* ``inputs``: per role (``samples``, ``real``, ``train``...), the source, how its stored values were
  mapped to [0, 1], and the fingerprint hashed while it streamed (:mod:`isgame.scoring.sources.fingerprint`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: (resolved path, mtime_ns, size) -> SHA-256 hex digest; a file is hashed once until it changes
_FILE_HASHES: dict[tuple[str, int, int], str] = {}
HASH_CHUNK_BYTES = 2**20


def cached_file_sha256(path: str | Path) -> str:
    """SHA-256 (64 hex digits) of a file, read in 1 MiB chunks; cached by (path, mtime, size)."""
    resolved = Path(path).resolve()
    status = os.stat(resolved)
    key = (str(resolved), status.st_mtime_ns, status.st_size)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(resolved, "rb") as stream:
            for chunk in iter(lambda: stream.read(HASH_CHUNK_BYTES), b""):
                digest.update(chunk)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


def isgame_version() -> str:
    from isgame import __version__

    return __version__


def network_input(classifier) -> str:
    """What the classifier's network does to its [0, 1] input, read from the classifier itself."""
    described = classifier.describe()
    if "normalisation" in described:
        return f"x * 255, {described['normalisation']}"  # the TF port scales to 0-255 first
    mean, std = getattr(classifier, "mean", None), getattr(classifier, "std", None)
    if mean is not None and std is not None:
        return (f"(x - mean) / std, mean {[round(v, 6) for v in mean.flatten().tolist()]}, "
                f"std {[round(v, 6) for v in std.flatten().tolist()]}")
    return "x in [0, 1], no normalisation"


def classifier_provenance(classifier) -> tuple[dict[str, object], dict[str, object]]:
    """(classifier, preprocessing) records of an :class:`~isgame.scoring.classifiers.base.ImageClassifier`."""
    described = classifier.describe()
    weights = getattr(classifier, "weights_sha256", None) or None
    record = {"name": classifier.name, "weights_sha256": weights, "num_classes": int(classifier.num_classes),
              "feature_dim": int(classifier.feature_dim)}
    if weights is None and described.get("fingerprint"):
        record["module_fingerprint"] = described["fingerprint"]  # a TorchScript file's SHA-256, or module:function
    preprocessing = {"resize": described.get("resize", classifier.interpolation),
                     "antialias": bool(classifier.antialias) if "resize" not in described else False,
                     "input_size": [int(v) for v in classifier.input_size],
                     "input_channels": int(classifier.input_channels),
                     "network_input": network_input(classifier)}
    return record, preprocessing


def input_record(source, *, role: str = "samples") -> dict[str, object]:
    """What a streamed source was and its fingerprint (an ImageSource or a PredictionSource), once it has been read."""
    fingerprint = getattr(source, "fingerprint", None)
    record = {"role": role, "source": source.name, "input_range": getattr(source, "input_range", None)}
    if fingerprint is None:
        record["fingerprint"] = None
    else:
        record["fingerprint"] = fingerprint.to_dict(source.num_samples)
    return record


def tensor_record(name: str, images, *, role: str) -> dict[str, object]:
    """An in-memory tensor (images already held, e.g. a domain's capped real set): SHA-256 of its bytes as held."""
    import numpy as np

    array = np.ascontiguousarray(images.detach().cpu().numpy())
    digest = hashlib.sha256(f"isgame-held-v1|{array.dtype.str} {array.shape[1:]}|".encode())
    digest.update(memoryview(array).cast("B"))
    return {"role": role, "source": name, "input_range": "float 0-1",
            "fingerprint": {"scheme": "held-tensor-bytes", "rows": int(array.shape[0]), "sha256": digest.hexdigest()}}


@dataclass(frozen=True)
class Provenance:
    """How a result was made. ``to_dict()`` is the ``provenance`` block of every JSON.

    ``classifier`` and ``preprocessing`` are None where no classifier ran (scoring stored logits);
    ``inputs`` lists one record per input (:func:`input_record`); fields that do not apply are None.
    """

    command: str
    isgame_version: str
    classifier: dict[str, object] | None
    num_classes: int | None
    preprocessing: dict[str, object] | None
    dtype: str | None
    device: str | None
    precision: str | None
    seed: int | None
    dialect: str | None
    n: int | None
    splits: int | None
    shuffled: bool | None
    inputs: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def make_provenance(command: str, *, classifier=None, num_classes: int | None = None, seed: int | None = None,
                    dialect: str | None = None, n: int | None = None, splits: int | None = None,
                    shuffled: bool | None = None, inputs: list[dict[str, object]] = (),
                    rounding: str = "none: float32 in [0, 1] as the loader maps stored values") -> Provenance:
    """The one way every command builds its :class:`Provenance`; ``classifier`` None where none ran."""
    record = preprocessing = None
    dtype = device = precision = None
    if classifier is not None:
        record, preprocessing = classifier_provenance(classifier)
        preprocessing["rounding"] = rounding
        num_classes = int(classifier.num_classes)
        dtype = str(classifier.dtype).replace("torch.", "")
        device = str(classifier.device)
        precision = str(getattr(classifier, "precision", "fp32"))
    return Provenance(command=command, isgame_version=isgame_version(), classifier=record, num_classes=num_classes,
                      preprocessing=preprocessing, dtype=dtype, device=device, precision=precision, seed=seed,
                      dialect=dialect, n=n, splits=splits, shuffled=shuffled, inputs=list(inputs))


def domain_provenance(command: str, domain, *, seed: int | None, n: int | None = None,
                      splits: int | None = None) -> Provenance:
    """Provenance of a command run on a :class:`~isgame.scoring.domains.Domain`: its classifier, and its training
    and real images as held (after any cap or seeded subsample), hashed as held."""
    inputs = [tensor_record(domain.train_source, domain.train, role="train"),
              tensor_record(domain.real_source, domain.real, role="real")]
    return make_provenance(command, classifier=domain.classifier, seed=seed, n=n, splits=splits, inputs=inputs)
