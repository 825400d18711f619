"""The Inception weights files isgame knows, where they are cached, and whether a file is one of them.

Three published files, two networks:

* ``inception-v3``: torchvision's ``inception_v3_google-0cc3c7bd.pth`` (1000 classes), which
  ``torchvision.models.inception_v3(weights=IMAGENET1K_V1)`` downloads;
* ``inception-v3-tf``: the port of TensorFlow's 2015-12-05 graph (1008 classes) that torch-fidelity
  downloads as ``weights-inception-2015-12-05-6726825d.pth``; pytorch-fid publishes the same bytes as
  ``pt_inception-2015-12-05-6726825d.pth`` (entry ``pytorch-fid-inception``), so either file serves.

All three libraries download through ``torch.hub.load_state_dict_from_url`` without a ``model_dir``,
so every one of them caches in ``<torch hub dir>/checkpoints``: ``$TORCH_HOME/hub/checkpoints`` when
``TORCH_HOME`` is set, else ``$XDG_CACHE_HOME/torch/hub/checkpoints`` (``~/.cache/...``), unless
``torch.hub.set_dir`` moved it. torch-fidelity's own ``$TORCH_HOME/fidelity_cache`` holds features
and statistics, never weights. A file one of them downloaded under another ``TORCH_HOME`` (or
before one was set) sits in the default folder, so the loaders look in all of these
(:func:`cache_dirs`) before they say a file is missing.

Nothing here touches the network: :func:`isgame.scoring.classifiers.weights_fetch.fetch_weights`
is the one function in isgame that downloads, and only when called.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from isgame.scoring.errors import InvalidInputError, SourceNotFoundError, parameter

#: bytes read at a time while hashing (files are ~100 MB; memory stays flat)
HASH_CHUNK_BYTES = 1 << 20
#: torch.hub's convention: the hex digits after the last "-" of a file name start its SHA-256
#: (``torch.hub.HASH_REGEX``, checked by ``load_state_dict_from_url(check_hash=True)``).
HASH_PREFIX_IN_NAME = re.compile(r"-([a-f0-9]+)\.")


@dataclass(frozen=True)
class WeightsEntry:
    """One published weights file: what it is, where it is published and its SHA-256 when known.

    ``sha256`` is None when no full hash could be established; then only ``hash_prefix`` (the hex
    digits in the file name, torch.hub's convention) is checked, and results say so.
    """

    name: str
    file_name: str
    url: str
    sha256: str | None
    size_bytes: int | None
    classifier: str
    publisher: str
    hash_source: str

    @property
    def hash_prefix(self) -> str:
        """The hex digits in the file name (8 for these files): the first characters of the SHA-256."""
        match = HASH_PREFIX_IN_NAME.search(self.file_name)
        return match[1] if match else ""

    @property
    def hash_known(self) -> str:
        """``sha256`` when the full hash is known, else ``prefix``."""
        return "sha256" if self.sha256 is not None else "prefix"

    def expected_hash(self) -> str:
        """What a matching file's SHA-256 must be (or start with): the full hash or the prefix."""
        return self.sha256 if self.sha256 is not None else self.hash_prefix

    def matches(self, digest: str) -> bool:
        """Whether a file with SHA-256 ``digest`` (64 hex) is this entry's file (prefix only when that is all we know)."""
        return digest == self.sha256 if self.sha256 is not None else bool(self.hash_prefix) and digest.startswith(
            self.hash_prefix)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "file_name": self.file_name, "url": self.url, "sha256": self.sha256,
                "hash_prefix": self.hash_prefix, "hash_known": self.hash_known, "size_bytes": self.size_bytes,
                "classifier": self.classifier, "publisher": self.publisher, "hash_source": self.hash_source}


# Where each hash comes from. None of these files could be downloaded here, so every hash is taken
# from public records of people who hashed the published file, checked against the prefix that the
# publisher put in the file name (torch.hub's check_hash convention):
#
# * inception_v3_google-0cc3c7bd.pth: "sha256: 0cc3c7bd75056d25e46cba549dc184522069b81e9787eff6df84f397bd52a5ef"
#   in Dramwig/CoFiTok-internal, docs/experiment_conditions/quality_metrics_inception_2026-07-08.md (the
#   file torchvision 0.22 downloaded into its hub cache), and the same hash pinned as "expected_sha256" by
#   another project's evaluation script and recorded with its size, 108,949,747 bytes, in a third project's
#   notes (found by exact-string code search). Starts with torchvision's published prefix 0cc3c7bd.
# * pt_inception-2015-12-05-6726825d.pth: "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
#   in genforce's Inception model, _MODEL_URL_SHA256["tf_inception_v3"], as kept in
#   snap-research/discoscene models/inception_model.py (downloads are checked against it).
# * weights-inception-2015-12-05-6726825d.pth: the same hash in HyperGAN/HyperGAN docs/image-fid.md ("whose
#   SHA256 must be 6726825d0af5f729..."); several other projects pin torch-fidelity's v0.2.0 file to it
#   with size 95,628,359 bytes, the size also recorded for pytorch-fid's file: the two are the same bytes.
_TORCHVISION_SOURCE = ("Dramwig/CoFiTok-internal docs/experiment_conditions/quality_metrics_inception_2026-07-08.md "
                       "(+ two other public pins); prefix 0cc3c7bd from torchvision's file name")
_TF_PORT_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
_TF_PORT_SIZE = 95_628_359

#: name -> entry; ``fetch_weights`` and ``weights_path`` take a name or a file name
KNOWN_WEIGHTS: dict[str, WeightsEntry] = {entry.name: entry for entry in (
    WeightsEntry(
        name="inception-v3", file_name="inception_v3_google-0cc3c7bd.pth",
        url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
        sha256="0cc3c7bd75056d25e46cba549dc184522069b81e9787eff6df84f397bd52a5ef", size_bytes=108_949_747,
        classifier="inception-v3", publisher="torchvision (Inception_V3_Weights.IMAGENET1K_V1)",
        hash_source=_TORCHVISION_SOURCE),
    WeightsEntry(
        name="inception-v3-tf", file_name="weights-inception-2015-12-05-6726825d.pth",
        url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        sha256=_TF_PORT_SHA256, size_bytes=_TF_PORT_SIZE, classifier="inception-v3-tf",
        publisher="torch-fidelity (release v0.2.0)", hash_source="HyperGAN/HyperGAN docs/image-fid.md"),
    WeightsEntry(
        name="pytorch-fid-inception", file_name="pt_inception-2015-12-05-6726825d.pth",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        sha256=_TF_PORT_SHA256, size_bytes=_TF_PORT_SIZE, classifier="inception-v3-tf",
        publisher="pytorch-fid (release fid_weights); the same bytes as torch-fidelity's",
        hash_source="snap-research/discoscene models/inception_model.py (genforce's _MODEL_URL_SHA256)"),
)}


def weights_entry(name: str) -> WeightsEntry:
    """The entry called ``name``, or whose file name is ``name``; an unknown name is a one-line error."""
    for entry in KNOWN_WEIGHTS.values():
        if name in (entry.name, entry.file_name):
            return entry
    raise InvalidInputError(f"unknown weights {name!r}; choose one of: {', '.join(KNOWN_WEIGHTS)}")


def entries_for_classifier(classifier: str) -> tuple[WeightsEntry, ...]:
    """The files a classifier loads, in the order its loader prefers them (its publisher's file first)."""
    return tuple(entry for entry in KNOWN_WEIGHTS.values() if entry.classifier == classifier)


def hub_checkpoints_dir() -> Path:
    """``<torch.hub.get_dir()>/checkpoints``: where torchvision, torch-fidelity and pytorch-fid download, and
    where :func:`fetch_weights` writes."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def cache_dirs() -> tuple[Path, ...]:
    """Every folder a known file may be cached in, first the one this process's torch hub uses.

    Then ``$TORCH_HOME/hub/checkpoints`` (where torch-fidelity and pytorch-fid download when
    ``torch.hub.set_dir`` moved this process's hub) and the default
    ``${XDG_CACHE_HOME:-~/.cache}/torch/hub/checkpoints`` (where they downloaded without ``TORCH_HOME``).
    """
    candidates = [hub_checkpoints_dir()]
    if os.environ.get("TORCH_HOME"):
        candidates.append(Path(os.environ["TORCH_HOME"]).expanduser() / "hub" / "checkpoints")
    candidates.append(Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "torch" / "hub" / "checkpoints")
    unique: list[Path] = []
    for folder in candidates:
        if folder not in unique:
            unique.append(folder)
    return tuple(unique)


def find_cached(entries: tuple[WeightsEntry, ...]) -> Path | None:
    """The first cached file of ``entries``: each cache folder in :func:`cache_dirs` order, each entry in order."""
    for folder in cache_dirs():
        for entry in entries:
            if (folder / entry.file_name).is_file():
                return folder / entry.file_name
    return None


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file as 64 hex digits, read in 1 MiB chunks; hashed once per (path, mtime, size)."""
    from isgame.scoring.provenance import cached_file_sha256

    return cached_file_sha256(path)


def fetch_hint(name: str) -> str:
    """How to get a known file, in words both audiences read: the command and the Python call."""
    return f"run isgame weights fetch {name} (in Python: isgame.fetch_weights({name!r}))"


def missing_weights_error(classifier: str, what: str) -> SourceNotFoundError:
    """The one-line "missing weights" error: the files and folders looked in, and the fetch command."""
    entries = entries_for_classifier(classifier)
    folders = cache_dirs()
    others = "; also looked in " + ", ".join(str(folder) for folder in folders[1:]) if len(folders) > 1 else ""
    also = f" or {', '.join(entry.file_name for entry in entries[1:])}" if len(entries) > 1 else ""
    return SourceNotFoundError(
        f"{what} weights not found at {folders[0] / entries[0].file_name}{also}{others}; isgame never downloads "
        f"unless asked: {fetch_hint(entries[0].name)}, or pass a file with {parameter('weights', 'PATH')}"
    )


def resolve_classifier_weights(classifier: str, weights: Path | None, *, what: str) -> tuple[Path, str]:
    """(path, SHA-256) of the weights a built-in Inception classifier loads.

    ``weights`` (a user's own file) is used as given; otherwise the caches are searched
    (:func:`find_cached`) and a cached file must be the published one: a damaged or foreign file
    under a known name is refused with both hashes rather than loaded.
    """
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise SourceNotFoundError(f"{what} weights not found at {path}; pass an existing file with "
                                      f"{parameter('weights', 'PATH')}, or {fetch_hint(entries_for_classifier(classifier)[0].name)}")
        return path, file_sha256(path)
    path = find_cached(entries_for_classifier(classifier))
    if path is None:
        raise missing_weights_error(classifier, what)
    digest = file_sha256(path)
    entry = weights_entry(path.name)
    if not entry.matches(digest):
        raise InvalidInputError(
            f"{path} is not the published {entry.file_name}: SHA-256 {digest}, expected {entry.expected_hash()}"
            f"{'' if entry.sha256 else ' (prefix; the full hash is unknown)'}; delete it and {fetch_hint(entry.name)}, "
            f"or pass your own file with {parameter('weights', 'PATH')}"
        )
    return path, digest


@dataclass(frozen=True)
class WeightsStatus:
    """A known file and where it is: ``path`` is the cached copy, or where a fetch would write it.

    ``verified`` is None when the file was not hashed (absent, or not asked), else whether its
    SHA-256 (or, when only that is known, its prefix) matches.
    """

    entry: WeightsEntry
    path: Path
    present: bool
    searched: tuple[Path, ...]
    verified: bool | None = None

    def to_dict(self) -> dict[str, object]:
        return {**self.entry.to_dict(), "path": str(self.path), "present": self.present,
                "searched": [str(folder) for folder in self.searched], "verified": self.verified}


def weights_path(name: str, *, verify: bool = False) -> WeightsStatus:
    """Where the file ``name`` (an entry name or file name) is cached, or where a fetch would put it.

    Looks for the entry's own file name in every folder of :func:`cache_dirs`; ``verify`` hashes a
    present file (about 0.3 s per 100 MB).
    """
    entry = weights_entry(name)
    found = find_cached((entry,))
    path = found if found is not None else hub_checkpoints_dir() / entry.file_name
    verified = entry.matches(file_sha256(path)) if verify and found is not None else None
    return WeightsStatus(entry=entry, path=path, present=found is not None, searched=cache_dirs(), verified=verified)


def list_weights(*, verify: bool = False) -> list[WeightsStatus]:
    """Every known file with its presence in the caches (and, with ``verify``, whether it hashes right)."""
    return [weights_path(name, verify=verify) for name in KNOWN_WEIGHTS]


@dataclass(frozen=True)
class WeightsVerification:
    """What a file is: its SHA-256 and size, and which known entries it matches.

    ``verdict``: ``match`` (the full SHA-256 of a known file), ``prefix-match`` (only the prefix
    in a file name is known, and it agrees), ``mismatch`` (named like a known file but not its
    bytes) or ``unknown`` (no known file).
    """

    path: Path
    sha256: str
    size_bytes: int
    matches: tuple[str, ...]
    named_as: str | None
    verdict: str
    message: str = field(default="")

    @property
    def ok(self) -> bool:
        """True for ``match`` and ``prefix-match``."""
        return self.verdict in ("match", "prefix-match")

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "sha256": self.sha256, "size_bytes": self.size_bytes,
                "matches": list(self.matches), "named_as": self.named_as, "verdict": self.verdict, "ok": self.ok,
                "message": self.message}


def verify_weights(path: Path | str) -> WeightsVerification:
    """Hash ``path`` and say which known weights file it is, if any (see :class:`WeightsVerification`)."""
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"no file at {path}; pass the weights file to check")
    digest = file_sha256(path)
    matches = tuple(entry.name for entry in KNOWN_WEIGHTS.values() if entry.matches(digest))
    named = next((entry for entry in KNOWN_WEIGHTS.values() if entry.file_name == path.name), None)
    verdict, message = _verdict(digest, matches, named)
    return WeightsVerification(path=path, sha256=digest, size_bytes=path.stat().st_size, matches=matches,
                               named_as=named.name if named else None, verdict=verdict, message=message)


def _verdict(digest: str, matches: tuple[str, ...], named: WeightsEntry | None) -> tuple[str, str]:
    """(verdict, one-line message) for a file with SHA-256 ``digest``."""
    if named is not None and named.name not in matches:
        holds = f"; it holds {', '.join(matches)}" if matches else ""
        return "mismatch", (f"named {named.file_name} but SHA-256 {digest} is not {named.expected_hash()}{holds}; "
                            f"delete it and {fetch_hint(named.name)}")
    full = [name for name in matches if KNOWN_WEIGHTS[name].sha256 is not None]
    if full:
        return "match", f"SHA-256 {digest} is the published {' = '.join(KNOWN_WEIGHTS[n].file_name for n in full)}"
    if matches:
        return "prefix-match", (f"SHA-256 {digest} starts with the prefix of {', '.join(matches)}; only that prefix "
                                "is known, so this is not a full check")
    return "unknown", f"SHA-256 {digest} is none of the known weights files ({', '.join(KNOWN_WEIGHTS)})"
