"""A domain: the classifier that scores it, the images a generator learned from, and held-out real images.

Every game, probe, the robustness matrix, the audit and ``check`` run on a :class:`Domain`. The
built-in one, :func:`digits_domain`, is scikit-learn's 8x8 digits with the shipped CNN; any other
is loaded by :func:`load_domain` from a classifier spec and two image sources (a folder, a .zip,
a .npy/.npz/.pt array, or a built-in source), e.g. Inception v3 with a CIFAR-10 folder.

Sizes stay bounded: each part is a seeded subsample of at most ``max_train`` / ``max_real``
images (a note says so), so a domain behind 50,000 images at 299 px holds only what its steps use.
Images are float32 (N, C, H, W) in [0, 1], all of one shape: the sources' own when train and real
agree, else both resized to the classifier's input (and a note says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from isgame import defaults
from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.classifiers.digits import SHIPPED_DIGITS_WEIGHTS
from isgame.scoring.classifiers.user import features_note, with_input_size
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.notes import Note
from isgame.scoring.sources.samples import noise_source, open_images

#: an auxiliary classifier chosen as "auto": the domain's own (:meth:`Domain.auxiliary_spec`)
AUTO = "auto"
#: resizing by more than this factor on the way into the classifier earns a note
RESIZE_NOTE_FACTOR = 4
#: the older names of the defaults (:data:`isgame.defaults.MAX_TRAIN`, :data:`isgame.defaults.MAX_REAL`)
DEFAULT_MAX_TRAIN, DEFAULT_MAX_REAL = defaults.MAX_TRAIN, defaults.MAX_REAL


@dataclass(frozen=True)
class BuiltinDomain:
    """A domain that ships with isgame, and what every command takes on it unless told otherwise.

    ``classifiers`` read its images; ``train_source`` and ``real_source`` are its built-in image sources;
    ``noun``, ``train_noun`` and ``class_noun`` name its real and training images and one of its classes in tables; ``second`` and ``robust`` map each
    of its classifiers to an independently trained one (FID-b, the sensitivity probe's weights axis) and to an
    adversarially trained one (R-IS, R-FID); ``ct_cells`` fixes C_T's k-means cells (None: from the set sizes).
    """

    name: str
    classifiers: tuple[str, ...]
    train_source: str
    real_source: str
    noun: str
    train_noun: str
    class_noun: str
    second: dict[str, str]
    robust: dict[str, str | None]
    class_names: tuple[str, ...]
    ct_cells: int | None = None

    def load_images(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training images, their labels and the held-out images, as fresh tensors."""
        from isgame.scoring.sources.digits_data import digits_split

        split = digits_split()
        return split.train_images, split.train_labels, split.test_images


#: scikit-learn's 8x8 digits and the three shipped CNNs
DIGITS = BuiltinDomain(
    name="digits", classifiers=tuple(SHIPPED_DIGITS_WEIGHTS), train_source="digits:train", real_source="digits:test",
    noun="digits", train_noun="training digits", class_noun="digit",
    second={"digits": "digits-b", "digits-b": "digits", "digits-robust": "digits-b"},
    robust={"digits": "digits-robust", "digits-b": "digits-robust", "digits-robust": None},
    class_names=tuple(str(digit) for digit in range(10)), ct_cells=10)
BUILTIN_DOMAINS: dict[str, BuiltinDomain] = {DIGITS.name: DIGITS}
#: the digits classifiers, whose own domain is the built-in split (older names, derived from :data:`DIGITS`)
DIGITS_CLASSIFIERS = DIGITS.classifiers
DIGITS_SOURCES = {"train": DIGITS.train_source, "real": DIGITS.real_source}


def builtin_domain_of(classifier_name: str) -> BuiltinDomain | None:
    """The built-in domain whose images ``classifier_name`` reads, or None (a classifier of the user's, Inception)."""
    return next((builtin for builtin in BUILTIN_DOMAINS.values() if classifier_name in builtin.classifiers), None)


def default_sources(classifier_name: str) -> dict[str, str | None]:
    """The built-in training and real image sources of ``classifier_name``'s domain, or None for each."""
    builtin = builtin_domain_of(classifier_name)
    return {"train": None if builtin is None else builtin.train_source,
            "real": None if builtin is None else builtin.real_source}


@dataclass(frozen=True)
class Domain:
    """A classifier, its training images and held-out real images of the same kind, and their defaults.

    ``train`` and ``real`` are float32 (N, C, H, W) in [0, 1] with one (C, H, W) between them, or None where the
    domain has no such images (a classifier of the user's scoring files on its own: ``isgame score``, ``fid``);
    a step that needs them calls :meth:`require_images`. ``train_labels`` (N_train,) int64 are the true classes
    where the source has them (digits), else None (games then use the classifier's predictions).
    ``class_names`` has K entries or is None. ``classifier_name`` and ``weights`` reload the classifier under
    other preprocessing options. ``noun`` / ``train_noun`` name the images in tables; ``second_classifier`` and
    ``robust_classifier`` are the specs an ``auto`` choice of those classifiers means (None: the domain has none);
    ``ct_cells`` fixes C_T's k-means cells (None: as many as the set sizes allow, at most 10); ``class_noun`` names
    one class in figures ("digit").
    """

    name: str
    classifier: ImageClassifier
    classifier_name: str
    train: torch.Tensor | None = field(default=None, repr=False)
    real: torch.Tensor | None = field(default=None, repr=False)
    train_source: str | None = None
    real_source: str | None = None
    weights: Path | None = None
    train_labels: torch.Tensor | None = field(default=None, repr=False)
    class_names: tuple[str, ...] | None = None
    train_available: int | None = None
    real_available: int | None = None
    notes: tuple[str, ...] = ()
    #: a stats file's reference (:class:`~isgame.scoring.sources.stats_file.ReferenceStats`) that the distribution
    #: metrics compare against instead of the training images' features, and where it came from
    reference_stats: object | None = field(default=None, repr=False)
    reference_stats_source: str | None = None
    noun: str = "real images"
    train_noun: str = "training images"
    class_noun: str = "class"
    second_classifier: str | None = None
    robust_classifier: str | None = None
    ct_cells: int | None = None
    #: how the real images are ordered when not as stored (:meth:`in_seeded_order`), and the stored row of each
    real_order: dict | None = None
    real_permutation: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image of the domain (the classifier's input where it holds none); games produce
        images of this shape."""
        images = self.real if self.real is not None else self.train
        if images is None:
            return (self.classifier.input_channels, *self.classifier.input_size)
        return tuple(images.shape[1:])

    @property
    def num_classes(self) -> int:
        return self.classifier.num_classes

    @property
    def has_images(self) -> bool:
        return self.train is not None and self.real is not None

    def require_images(self, what: str) -> None:
        """Refuse, naming the fix, a step that needs the training and real images of a domain without them."""
        missing = [parameter(name) for name in ("train", "real") if getattr(self, name) is None]
        if missing:
            raise InvalidInputError(
                f"{what} needs the domain's images, and classifier {self.classifier_name} has no built-in domain: pass "
                f"{' and '.join(missing)} (the images its generator learned from, and held-out real images of the "
                "same kind), e.g. folders of CIFAR-10 training and test images")

    @cached_property
    def train_outputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N_train, K) and features (N_train, D) of the training images, computed once per domain: the
        matrix, mode collapse and the FID feature attack all need them."""
        from isgame.scoring.pipeline import classify_with_features

        return classify_with_features(self.classifier, self.train)

    @cached_property
    def real_outputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N_real, K) and features (N_real, D) of the real images, computed once per domain."""
        from isgame.scoring.pipeline import classify_with_features

        return classify_with_features(self.classifier, self.real)

    @cached_property
    def train_classes(self) -> torch.Tensor:
        """A class per training image (N_train,): the true label where known, else the classifier's top-1."""
        if self.train_labels is not None:
            return self.train_labels
        return self.train_outputs[0].argmax(dim=1)

    def noise(self, kind: str, n: int, *, seed: int) -> torch.Tensor:
        """``n`` seeded noise images (n, C, H, W) of the domain's shape; ``kind`` is uniform or gaussian."""
        channels, height, width = self.image_shape
        return noise_source(kind, n=n, seed=seed, image_size=(height, width), channels=channels).load_all()

    def classifier_variant(self, **preprocessing) -> ImageClassifier:
        """The domain's classifier reloaded with other ``interpolation`` / ``antialias`` options."""
        return load_classifier(self.classifier_name, weights=self.weights, device=self.classifier.device, **preprocessing)

    def in_seeded_order(self, seed: int, *, first: int | None = None) -> "Domain":
        """The domain with its real images in a seeded random order, so that no stored order (a class-per-subfolder
        source reads class by class) decides a score: the first ``first`` rows are a draw stratified by predicted
        class (each class's share of them as of the whole set, largest remainders), each part in random order
        (:func:`seeded_order`). ``real_order`` records the order (with the drawn rows, ``first_rows``) and the runs
        test of the stored one."""
        from isgame.scoring.metrics.sample_order import runs_test

        self.require_images("a seeded order of the real images")
        count = self.real.shape[0]
        stratified = None if first is None or first >= count else int(first)
        if self.real_order is not None:  # already reordered: the same order again, or a new one of the stored order
            if (self.real_order["seed"], self.real_order["stratified_first"]) == (seed, stratified):
                return self
            return self._reordered(np.argsort(self.real_permutation), None, None).in_seeded_order(seed, first=first)
        classes = self.real_outputs[0].argmax(dim=1).numpy()
        order = seeded_order(classes, seed=seed, first=first)
        stored = runs_test(classes, self.num_classes)
        record = {"order": "seeded permutation", "seed": seed, "n": int(count), "stratified_first": stratified,
                  # which images the stratified draw took (rows of the real images as held), so that a reader
                  # can score exactly those
                  "first_rows": None if stratified is None else order[:stratified].tolist(),
                  "stored_order_runs_test": stored.to_dict()}
        note = Note(f"{self.real_source} stores its images in clustered order (the runs test of their predicted "
                    f"classes: z = {stored.z:.1f}); they are scored in a seeded random order (seed {seed})")
        notes = (*self.notes, note) if stored.clustered and note not in self.notes else self.notes
        return self._reordered(order, record, order, notes=notes)

    def _reordered(self, rows: np.ndarray, record: dict | None, permutation: np.ndarray | None, *,
                   notes: tuple[str, ...] | None = None) -> "Domain":
        """The domain with its real images (and their cached outputs) in the order ``rows``."""
        index = torch.from_numpy(np.asarray(rows))
        moved = replace(self, real=self.real[index], real_order=record, real_permutation=permutation,
                        notes=self.notes if notes is None else notes)
        if "real_outputs" in self.__dict__:  # the classifier's outputs of the same images, in the new order
            moved.__dict__["real_outputs"] = tuple(output[index] for output in self.real_outputs)
        if "train_outputs" in self.__dict__:
            moved.__dict__["train_outputs"] = self.train_outputs
        return moved

    def auxiliary_spec(self, role: str) -> str | None:
        """The classifier spec an ``auto`` choice of the "second" or "robust" classifier means on this domain."""
        if role not in ("second", "robust"):
            raise InvalidInputError(f"an auxiliary classifier is second or robust, got {role!r}")
        return self.second_classifier if role == "second" else self.robust_classifier

    def auxiliary_classifier(self, role: str, choice: ImageClassifier | str | None = AUTO) -> ImageClassifier | None:
        """The "second" or "robust" classifier: ``choice`` itself, loaded when it is a spec; for ``auto``, the
        domain's own (:meth:`auxiliary_spec`: on the digits, digits-b and digits-robust); None for None."""
        if isinstance(choice, str) and choice == AUTO:
            choice = self.auxiliary_spec(role)
        if choice is None or isinstance(choice, ImageClassifier):
            return choice
        return load_classifier(choice, device=self.classifier.device)

    def describe(self) -> dict[str, object]:
        """What the domain holds, for reports."""
        def part(images, source, available):
            return None if images is None else {"source": source, "n": int(images.shape[0]), "available": available}

        return {
            "name": self.name, "classifier": self.classifier.describe(), "image_shape": list(self.image_shape),
            "num_classes": self.num_classes, "class_names": None if self.class_names is None else list(self.class_names),
            "train": part(self.train, self.train_source, self.train_available),
            "real": part(self.real, self.real_source, self.real_available),
            "noun": self.noun, "train_noun": self.train_noun, "class_noun": self.class_noun,
            **({} if self.real_order is None else {"real_order": self.real_order}),
            "notes": [str(note) for note in self.notes],
            **({} if self.reference_stats is None else {"reference_stats": {
                "source": self.reference_stats_source, **self.reference_stats.to_dict()}}),
        }

    def require_real(self, minimum: int, why: str) -> None:
        """Refuse, naming the fix, when the domain holds fewer than ``minimum`` real images."""
        self.require_images(why)
        if self.real.shape[0] < minimum:
            raise InvalidInputError(f"{why} needs at least {minimum} real images, but {parameter('real')} "
                                    f"{self.real_source} gives {self.real.shape[0]}; pass more real images of the domain")


def _builtin_defaults(classifier_name: str, builtin: BuiltinDomain | None) -> dict[str, object]:
    """The fields a domain takes from the built-in domain of its classifier (its auxiliary classifiers), if any."""
    return {f"{role}_classifier": auxiliary_default(classifier_name, role) for role in ("second", "robust")}


def auxiliary_default(classifier_name: str, role: str) -> str | None:
    """The "second" or "robust" classifier an ``auto`` choice means beside ``classifier_name``, known before any
    classifier loads: its built-in domain's (digits: digits-b and digits-robust), else None."""
    builtin = builtin_domain_of(classifier_name)
    return None if builtin is None else getattr(builtin, role).get(classifier_name)


def seeded_order(classes: np.ndarray, *, seed: int, first: int | None = None) -> np.ndarray:
    """A seeded permutation of the rows (N,) of ``classes`` (N,): the first ``first`` rows a draw stratified by
    class (each class's share of them as of all N, by largest remainders, rows drawn at random within a class),
    then the others; each part in random order. ``first`` None (or >= N): a plain random permutation."""
    rng = np.random.default_rng(seed)
    count = classes.shape[0]
    if first is None or first >= count:
        return rng.permutation(count)
    labels, sizes = np.unique(classes, return_counts=True)
    quota = sizes * first / count
    take = np.floor(quota).astype(np.int64)
    take[np.argsort(-(quota - take), kind="stable")[: first - int(take.sum())]] += 1
    chosen = np.concatenate([rng.permutation(np.flatnonzero(classes == label))[:k] for label, k in zip(labels, take)])
    rest = np.setdiff1d(np.arange(count), chosen)
    return np.concatenate([rng.permutation(chosen), rng.permutation(rest)])


def holds_builtin_images(domain: Domain, builtin: BuiltinDomain = DIGITS) -> bool:
    """Whether ``domain``'s real images are ``builtin``'s own (the domain probe adds the built-in digits as an
    out-of-domain row everywhere else)."""
    return domain.real_source == builtin.real_source


def digits_domain(classifier_name: str = defaults.CLASSIFIER, *, weights: Path | None = None,
                  classifier: ImageClassifier | None = None) -> Domain:
    """The built-in domain: the shipped digits CNN, the 1257 training and 540 held-out digits (1, 8, 8)."""
    return builtin_domain(DIGITS, classifier_name, weights=weights, classifier=classifier)


def builtin_domain(builtin: BuiltinDomain, classifier_name: str, *, weights: Path | None = None,
                   classifier: ImageClassifier | None = None) -> Domain:
    """``builtin``'s images with ``classifier_name`` (one of its classifiers), and every default it sets."""
    train, labels, real = builtin.load_images()
    classifier = load_classifier(classifier_name, weights=weights) if classifier is None else classifier
    return Domain(name=builtin.name, classifier=classifier, classifier_name=classifier_name, weights=weights,
                  train=train, real=real, train_source=builtin.train_source, real_source=builtin.real_source,
                  train_labels=labels, class_names=builtin.class_names, train_available=train.shape[0],
                  real_available=real.shape[0], noun=builtin.noun, train_noun=builtin.train_noun,
                  class_noun=builtin.class_noun,
                  ct_cells=builtin.ct_cells, **_builtin_defaults(classifier_name, builtin))


def load_domain(classifier: str = defaults.CLASSIFIER, *, weights: Path | None = None, train: str | None = None,
                real: str | None = None, class_names: Sequence[str] | str | None = None,
                max_train: int = defaults.MAX_TRAIN, max_real: int = defaults.MAX_REAL, seed: int = defaults.SEED,
                value_range: str = "auto", device: str | torch.device | None = None,
                allow_stats: bool = False, require_images: bool = True,
                network: ImageClassifier | None = None) -> Domain:
    """The domain of ``classifier`` with ``train`` and ``real`` images from any source the loader reads.

    A classifier of a built-in domain (the digits CNNs) takes that domain's images for the parts not given. Any other classifier needs both sources, unless ``require_images`` is False: then each part given
    is loaded and a part not given is left out (None), for the commands that score files with the classifier alone
    (and only the held-out real images of a built-in domain are filled in, never its training images: a copying
    test runs only when asked for). ``class_names`` is a list, a comma-separated string or a text file with one
    name per line, and must have K entries. ``allow_stats``: ``real`` may be a stats file of ``isgame stats save``
    (for the robustness matrix, whose distribution metrics then compare against it); otherwise a stats file is
    refused in one line. ``network`` is ``classifier`` already loaded (with ``weights``), when the caller has it.
    """
    _check_caps(max_train=max_train, max_real=max_real)
    from isgame.scoring.metrics.fid import is_statistics_file

    if allow_stats and real is not None and is_statistics_file(real):
        return _domain_with_reference_stats(classifier, weights=weights, train=train, stats_path=real,
                                            class_names=class_names, max_train=max_train, max_real=max_real,
                                            seed=seed, value_range=value_range, device=device)
    _refuse_statistics(train=train, real=real)
    builtin = builtin_domain_of(classifier)
    if builtin is not None:
        real = builtin.real_source if real is None else real
        train = builtin.train_source if train is None and require_images else train
        if (train, real) == (builtin.train_source, builtin.real_source):
            network = load_classifier(classifier, weights=weights, device=device) if network is None else network
            return _with_class_names(builtin_domain(builtin, classifier, weights=weights, classifier=network),
                                     class_names)
    if require_images and (train is None or real is None):
        missing = " and ".join(parameter(name) for name, value in (("train", train), ("real", real)) if value is None)
        raise InvalidInputError(
            f"classifier {classifier} has no built-in domain: pass {missing} (the images its generator learned "
            f"from, and held-out real images of the same kind), e.g. folders of CIFAR-10 training and test images")
    notes: list[str] = []
    if network is None:  # a classifier of the user's that declares no input size reads it from the images
        classifier = with_input_size(classifier, [train, real], notes=notes)
    network = load_classifier(classifier, weights=weights, device=device) if network is None else network
    parts = {name: _load_part(spec, network, builtin, part=name, cap=cap, seed=part_seed, value_range=value_range,
                              notes=notes)
             for name, spec, cap, part_seed in (("train", train, max_train, seed), ("real", real, max_real, seed + 1))
             if spec is not None}
    parts = _one_shape(network, parts, notes)
    for images in parts.values():
        check_classifier_fits(network, images[0][:2], classifier)
        _resize_note(network, images[0], classifier, notes)
        break
    if require_images:
        notes.extend(features_note(network))
    train_images, train_available, train_labels = parts.get("train", (None, None, None))
    real_images, real_available, _ = parts.get("real", (None, None, None))
    domain = Domain(classifier=network, classifier_name=classifier, weights=weights,
                    train=train_images, real=real_images, train_source=train, real_source=real,
                    train_labels=train_labels, train_available=train_available, real_available=real_available,
                    notes=tuple(notes), **_builtin_defaults(classifier, builtin), **_names(builtin, train, real))
    return _with_class_names(domain, class_names)


def _check_caps(**caps: int) -> None:
    for name, value in caps.items():
        if value < 2:
            raise InvalidInputError(f"{parameter(name)} must be >= 2, got {value}")


def _names(builtin: BuiltinDomain | None, train: str | None, real: str | None) -> dict[str, object]:
    """A built-in domain's name, nouns and fixed settings where every part given is its own, else "custom"."""
    given = {name: spec for name, spec in (("train", train), ("real", real)) if spec is not None}
    if builtin is None or any(spec != getattr(builtin, f"{name}_source") for name, spec in given.items()):
        return {"name": "custom"}
    return {"name": builtin.name, "noun": builtin.noun, "train_noun": builtin.train_noun,
            "class_noun": builtin.class_noun, "ct_cells": builtin.ct_cells, "class_names": builtin.class_names}


def _load_part(spec: str, classifier: ImageClassifier, builtin: BuiltinDomain | None, *, part: str, cap: int,
               seed: int, value_range: str, notes: list[str]) -> tuple[torch.Tensor, int, torch.Tensor | None]:
    """One part of a domain: images, how many the source holds, and true labels (a built-in source's only)."""
    if builtin is not None and spec == getattr(builtin, f"{part}_source"):
        train, labels, real = builtin.load_images()
        return (train, train.shape[0], labels) if part == "train" else (real, real.shape[0], None)
    images, available = _load_capped(spec, classifier, cap=cap, seed=seed, value_range=value_range, notes=notes,
                                      cap_name=f"max_{part}")
    return images, available, None


def _one_shape(classifier: ImageClassifier, parts: dict, notes: list[str]) -> dict:
    """The training and real images at one (C, H, W): as they are when they agree, else both resized to the
    classifier's input (a note says so)."""
    if len(parts) < 2 or parts["train"][0].shape[1:] == parts["real"][0].shape[1:]:
        return parts

    def shape(images):
        return "x".join(str(d) for d in images.shape[1:])

    target = (classifier.input_channels, *classifier.input_size)
    notes.append(f"train images are {shape(parts['train'][0])} and real images {shape(parts['real'][0])}: both "
                 f"resized to the classifier's input {'x'.join(str(d) for d in target)}")
    return {name: (_conform(classifier, images), available, labels)
            for name, (images, available, labels) in parts.items()}


def _resize_note(classifier: ImageClassifier, images: torch.Tensor, name: str, notes: list[str]) -> None:
    """A note when the domain's images are resized by more than :data:`RESIZE_NOTE_FACTOR` on the way in."""
    height, width = images.shape[-2:]
    factor = max(classifier.input_size[0] / height, height / classifier.input_size[0],
                 classifier.input_size[1] / width, width / classifier.input_size[1])
    if factor > RESIZE_NOTE_FACTOR:
        notes.append(f"the domain's images are {height}x{width} and {name} reads "
                     f"{classifier.input_size[0]}x{classifier.input_size[1]}: every image is resized {factor:.0f}x on "
                     "the way in; is this the classifier for these images?")


def _domain_with_reference_stats(classifier: str, *, weights: Path | None, train: str | None, stats_path: str,
                                 class_names, max_train: int, max_real: int, seed: int, value_range: str,
                                 device) -> Domain:
    """A domain whose distribution metrics compare against a stats file (``isgame stats save``), refused unless
    made with this classifier's settings. Its held-out real images are a built-in domain's own, else a seeded split
    of the training images, min(``max_real``, N / 2) of them, kept out of its training part (a note says so)."""
    from isgame.scoring.sources.stats_file import load_reference_stats

    _refuse_statistics(train=train)
    notes: list[str] = []
    classifier = with_input_size(classifier, [train], notes=notes)
    network = load_classifier(classifier, weights=weights, device=device)
    notes.extend(features_note(network))
    stats = load_reference_stats(stats_path, classifier=network)
    builtin = builtin_domain_of(classifier)
    if builtin is not None and train in (None, builtin.train_source):
        domain = builtin_domain(builtin, classifier, weights=weights, classifier=network)
        return _with_class_names(replace(domain, reference_stats=stats, reference_stats_source=str(stats_path)),
                                 class_names)
    if train is None:
        raise InvalidInputError(f"classifier {classifier} has no built-in domain: pass {parameter('train')} (the "
                                f"images its generator learned from); {stats_path} serves as the reference statistics")
    images, available = _load_capped(train, network, cap=max_train + max_real, seed=seed, value_range=value_range,
                                     notes=notes, cap_name="max_train")
    if images.shape[0] < 4:
        raise InvalidInputError(f"{parameter('train')} {train} gives {images.shape[0]} images; a domain whose real "
                                "side is a stats file splits its training images and needs at least 4")
    order = torch.from_numpy(np.random.default_rng(seed).permutation(images.shape[0]))
    real_count = min(max_real, images.shape[0] // 2)
    real_rows, train_rows = torch.sort(order[:real_count]).values, torch.sort(order[real_count:][:max_train]).values
    notes.append(Note(f"{stats_path} holds feature statistics, not images: the distribution metrics compare against "
                      f"it, and the held-out real images are a seeded split of {real_count} of the {train} images, "
                      "kept out of the training part"))
    domain = Domain(name="custom", classifier=network, classifier_name=classifier, weights=weights,
                    train=images[train_rows], real=images[real_rows], train_source=train,
                    real_source=f"{train} (held-out split)", train_available=available, real_available=real_count,
                    notes=tuple(notes), reference_stats=stats, reference_stats_source=str(stats_path),
                    **_builtin_defaults(classifier, builtin))
    return _with_class_names(domain, class_names)


def _refuse_statistics(**specs: str | None) -> None:
    """A domain holds images: a stats file (mu, sigma) as its real or training images is refused in one line."""
    from isgame.scoring.metrics.fid import is_statistics_file

    for name, spec in specs.items():
        if spec is not None and is_statistics_file(spec):
            raise InvalidInputError(
                f"{parameter(name)} {spec} holds feature statistics, not images: a domain's games, probes and "
                "attacks start from its images and its C_T and nearest-neighbour tests compare pixels; pass images "
                "here (the FID, claim check, matrix and audit take a stats file as their real images)")


def load_real_images(spec: str, classifier: ImageClassifier, *, cap: int = defaults.MAX_REAL, seed: int = defaults.SEED,
                     value_range: str = "auto", notes: list[str] | None = None) -> torch.Tensor:
    """Real images of ``spec`` (N, C, H, W) float32 in [0, 1]: at most ``cap``, a seeded subsample beyond."""
    images, _ = _load_capped(spec, classifier, cap=cap, seed=seed, value_range=value_range,
                             notes=[] if notes is None else notes, cap_name="max_real")
    return images


def check_classifier_fits(classifier: ImageClassifier, images: torch.Tensor, name: str) -> None:
    """Refuse, in one line, a classifier that cannot read images of this shape or gives no (N, K) finite logits."""
    shape = "x".join(str(d) for d in images.shape[1:])
    try:
        with torch.no_grad():
            logits = classifier(images)
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise InvalidInputError(
            f"classifier {name} cannot read the domain's {shape} images ({first}); give a classifier whose input "
            f"matches them, e.g. torchscript:net.pt?size=HxW&channels=C, or images of its input size") from None
    if logits.shape != (images.shape[0], classifier.num_classes) or not torch.isfinite(logits).all():
        raise InvalidInputError(f"classifier {name} gives no finite (N, {classifier.num_classes}) logits on the "
                                f"domain's {shape} images; check its input size and normalisation options")


def _conform(classifier: ImageClassifier, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([classifier.preprocess(batch).float() for batch in images.split(256)])


def _load_capped(spec: str, classifier: ImageClassifier, *, cap: int, seed: int, value_range: str,
                 notes: list[str], cap_name: str) -> tuple[torch.Tensor, int]:
    """At most ``cap`` images of ``spec`` (a seeded subsample when it holds more, in file order), and its size."""
    def conform(image: torch.Tensor) -> torch.Tensor:
        return classifier.preprocess(image).float()

    source = open_images(spec, seed=seed, image_size=classifier.input_size, value_range=value_range)
    notes.extend(source.notes)
    available = source.num_samples
    if available <= cap:
        return source.load_all(conform=conform), available
    # A seeded subsample, not the first rows: folders are often sorted by class.
    chosen = np.sort(np.random.default_rng(seed).choice(available, size=cap, replace=False))
    notes.append(Note(f"{spec} holds {available} images: using a seeded subsample of {cap} ({parameter(cap_name)} "
                      "sets it)"))
    images = [image for index in chosen for image in source.batches(1, start=int(index), stop=int(index) + 1)]
    if len({tuple(image.shape) for image in images}) > 1:
        images = [conform(image) for image in images]
    return torch.cat(images), available


def _with_class_names(domain: Domain, class_names: Sequence[str] | str | None) -> Domain:
    if class_names is None:
        return domain
    names = parse_class_names(class_names)
    if len(names) != domain.num_classes:
        raise InvalidInputError(f"{parameter('class_names')} gives {len(names)} names but the classifier has "
                                f"K = {domain.num_classes} classes; give one name per class, in class order")
    return replace(domain, class_names=tuple(names))


def parse_class_names(class_names: Sequence[str] | str) -> list[str]:
    """A list as is; a path to a text file: one name per non-empty line; else a comma-separated string."""
    if not isinstance(class_names, str):
        return [str(name) for name in class_names]
    path = Path(class_names)
    if path.is_file():
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [part.strip() for part in class_names.split(",") if part.strip()]


def pca_bandwidth_scale(image_shape: Sequence[int]) -> float:
    """sqrt(D / 64) for images of D pixel values: KDE bandwidths are stated for 8x8 grey digits, and this keeps
    the noise they add per pixel the same on a domain of any size (a 30-d isotropic N(0, h^2) spreads over D pixels)."""
    return math.sqrt(math.prod(image_shape) / 64)


def as_domain(domain: "Domain | ImageClassifier") -> Domain:
    """A :class:`Domain` as is; a classifier of a built-in domain as that domain; any other classifier is refused
    (its images are not built in)."""
    if isinstance(domain, Domain):
        return domain
    builtin = builtin_domain_of(domain.name) if isinstance(domain, ImageClassifier) else None
    if builtin is not None:
        return builtin_domain(builtin, domain.name, classifier=domain)
    raise InvalidInputError(f"pass a Domain (isgame.load_domain(classifier, train=..., real=...)): classifier "
                            f"{getattr(domain, 'name', type(domain).__name__)} has no built-in images")
