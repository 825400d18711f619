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

from isgame.scoring.classifiers import load_classifier
from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.classifiers.digits import SHIPPED_DIGITS_WEIGHTS
from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.notes import Note
from isgame.scoring.sources.samples import noise_source, open_images

#: the digits classifiers, whose own domain is the built-in split
DIGITS_CLASSIFIERS = tuple(SHIPPED_DIGITS_WEIGHTS)
DIGITS_SOURCES = {"train": "digits:train", "real": "digits:test"}
#: at most this many images of each part are held (a seeded subsample beyond)
DEFAULT_MAX_TRAIN, DEFAULT_MAX_REAL = 2000, 1000
#: resizing by more than this factor on the way into the classifier earns a note
RESIZE_NOTE_FACTOR = 4


@dataclass(frozen=True)
class Domain:
    """A classifier, its training images and held-out real images of the same kind.

    ``train`` and ``real`` are float32 (N, C, H, W) in [0, 1] with one (C, H, W) between them;
    ``train_labels`` (N_train,) int64 are the true classes where the source has them (digits), else
    None (games then use the classifier's predictions). ``class_names`` has K entries or is None.
    ``classifier_name`` and ``weights`` reload the classifier under other preprocessing options.
    """

    name: str
    classifier: ImageClassifier
    classifier_name: str
    train: torch.Tensor = field(repr=False)
    real: torch.Tensor = field(repr=False)
    train_source: str
    real_source: str
    weights: Path | None = None
    train_labels: torch.Tensor | None = field(default=None, repr=False)
    class_names: tuple[str, ...] | None = None
    train_available: int | None = None
    real_available: int | None = None
    notes: tuple[str, ...] = ()
    #: a stats file's reference (:class:`~isgame.scoring.sources.stats_file.ReferenceStats`) that the distribution metrics
    #: compare against instead of the training images' features, and where it came from
    reference_stats: object | None = field(default=None, repr=False)
    reference_stats_source: str | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image of the domain; games produce images of this shape."""
        return tuple(self.real.shape[1:])

    @property
    def num_classes(self) -> int:
        return self.classifier.num_classes

    @property
    def is_digits(self) -> bool:
        """The built-in digits split (its tables and labels read "digits")."""
        return self.name == "digits"

    @property
    def noun(self) -> str:
        """What the real images are called in tables: "digits" for the built-in domain, else "real images"."""
        return "digits" if self.is_digits else "real images"

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

    def describe(self) -> dict[str, object]:
        """What the domain holds, for reports."""
        return {
            "name": self.name, "classifier": self.classifier.describe(), "image_shape": list(self.image_shape),
            "num_classes": self.num_classes, "class_names": None if self.class_names is None else list(self.class_names),
            "train": {"source": self.train_source, "n": int(self.train.shape[0]), "available": self.train_available},
            "real": {"source": self.real_source, "n": int(self.real.shape[0]), "available": self.real_available},
            "notes": [str(note) for note in self.notes],
            **({} if self.reference_stats is None else {"reference_stats": {
                "source": self.reference_stats_source, **self.reference_stats.to_dict()}}),
        }

    def require_real(self, minimum: int, why: str) -> None:
        """Refuse, naming the fix, when the domain holds fewer than ``minimum`` real images."""
        if self.real.shape[0] < minimum:
            raise InvalidInputError(f"{why} needs at least {minimum} real images, but {parameter('real')} "
                                    f"{self.real_source} gives {self.real.shape[0]}; pass more real images of the domain")


def digits_domain(classifier_name: str = "digits", *, weights: Path | None = None,
                  classifier: ImageClassifier | None = None) -> Domain:
    """The built-in domain: the shipped digits CNN, the 1257 training and 540 held-out digits (1, 8, 8)."""
    from isgame.scoring.sources.digits_data import digits_split

    split = digits_split()
    classifier = load_classifier(classifier_name, weights=weights) if classifier is None else classifier
    return Domain(name="digits", classifier=classifier, classifier_name=classifier_name, weights=weights,
                  train=split.train_images, real=split.test_images, train_source="digits:train",
                  real_source="digits:test", train_labels=split.train_labels,
                  class_names=tuple(str(digit) for digit in range(10)),
                  train_available=split.train_images.shape[0], real_available=split.test_images.shape[0])


def load_domain(classifier: str = "digits", *, weights: Path | None = None, train: str | None = None,
                real: str | None = None, class_names: Sequence[str] | str | None = None,
                max_train: int = DEFAULT_MAX_TRAIN, max_real: int = DEFAULT_MAX_REAL, seed: int = 0,
                value_range: str = "auto", device: str | torch.device | None = None,
                allow_stats: bool = False) -> Domain:
    """The domain of ``classifier`` with ``train`` and ``real`` images from any source the loader reads.

    With a digits classifier and neither source, the built-in digits domain (numbers as always).
    Any other classifier needs both sources: its own domain is not built in. ``class_names`` is a
    list, a comma-separated string or a text file with one name per line, and must have K entries.
    ``allow_stats``: ``real`` may be a stats file of ``isgame stats save`` (for the robustness matrix, whose
    distribution metrics then compare against it); otherwise a stats file is refused in one line.
    """
    for name, value in (("max_train", max_train), ("max_real", max_real)):
        if value < 2:
            raise InvalidInputError(f"{parameter(name)} must be >= 2, got {value}")
    from isgame.scoring.metrics.fid import is_statistics_file

    if allow_stats and real is not None and is_statistics_file(real):
        return _domain_with_reference_stats(classifier, weights=weights, train=train, stats_path=real,
                                            class_names=class_names, max_train=max_train, max_real=max_real,
                                            seed=seed, value_range=value_range, device=device)
    _refuse_statistics(train=train, real=real)
    if classifier in DIGITS_CLASSIFIERS and train in (None, DIGITS_SOURCES["train"]) and \
            real in (None, DIGITS_SOURCES["real"]):
        domain = digits_domain(classifier, weights=weights,
                               classifier=load_classifier(classifier, weights=weights, device=device))
        return _with_class_names(domain, class_names)
    if train is None or real is None:
        missing = " and ".join(parameter(name) for name, value in (("train", train), ("real", real)) if value is None)
        raise InvalidInputError(
            f"classifier {classifier} has no built-in domain: pass {missing} (the images its generator learned "
            f"from, and held-out real images of the same kind), e.g. folders of CIFAR-10 training and test images")
    network = load_classifier(classifier, weights=weights, device=device)
    notes: list[str] = []
    train_images, train_available = _load_capped(train, network, cap=max_train, seed=seed, value_range=value_range,
                                                 notes=notes, cap_name="max_train")
    real_images, real_available = _load_capped(real, network, cap=max_real, seed=seed + 1, value_range=value_range,
                                               notes=notes, cap_name="max_real")
    if train_images.shape[1:] != real_images.shape[1:]:
        def shape(images):
            return "x".join(str(d) for d in images.shape[1:])

        target = (network.input_channels, *network.input_size)
        notes.append(f"train images are {shape(train_images)} and real images {shape(real_images)}: both resized to "
                     f"the classifier's input {'x'.join(str(d) for d in target)}")
        train_images, real_images = _conform(network, train_images), _conform(network, real_images)
    check_classifier_fits(network, real_images[:2], classifier)
    height, width = real_images.shape[-2:]
    factor = max(network.input_size[0] / height, height / network.input_size[0],
                 network.input_size[1] / width, width / network.input_size[1])
    if factor > RESIZE_NOTE_FACTOR:
        notes.append(f"the domain's images are {height}x{width} and {classifier} reads "
                     f"{network.input_size[0]}x{network.input_size[1]}: every image is resized {factor:.0f}x on the "
                     f"way in; is this the classifier for these images?")
    domain = Domain(name="custom", classifier=network, classifier_name=classifier, weights=weights,
                    train=train_images, real=real_images, train_source=train, real_source=real,
                    train_available=train_available, real_available=real_available, notes=tuple(notes))
    return _with_class_names(domain, class_names)


def _domain_with_reference_stats(classifier: str, *, weights: Path | None, train: str | None, stats_path: str,
                                 class_names, max_train: int, max_real: int, seed: int, value_range: str,
                                 device) -> Domain:
    """A domain whose distribution metrics compare against a stats file (``isgame stats save``), refused unless
    made with this classifier's settings. Its held-out real images are the digits' test split for a digits
    classifier, else a seeded split of the training images, min(``max_real``, N / 2) of them, kept out of its
    training part (a note says so)."""
    from isgame.scoring.sources.stats_file import load_reference_stats

    _refuse_statistics(train=train)
    network = load_classifier(classifier, weights=weights, device=device)
    stats = load_reference_stats(stats_path, classifier=network)
    if classifier in DIGITS_CLASSIFIERS and train in (None, DIGITS_SOURCES["train"]):
        domain = digits_domain(classifier, weights=weights, classifier=network)
        return _with_class_names(replace(domain, reference_stats=stats, reference_stats_source=str(stats_path)),
                                 class_names)
    if train is None:
        raise InvalidInputError(f"classifier {classifier} has no built-in domain: pass {parameter('train')} (the "
                                f"images its generator learned from); {stats_path} serves as the reference statistics")
    notes: list[str] = []
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
                    notes=tuple(notes), reference_stats=stats, reference_stats_source=str(stats_path))
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


def load_real_images(spec: str, classifier: ImageClassifier, *, cap: int = DEFAULT_MAX_REAL, seed: int = 0,
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
    """A :class:`Domain` as is; a digits classifier as the built-in digits domain; any other classifier is refused
    (its images are not built in)."""
    if isinstance(domain, Domain):
        return domain
    if isinstance(domain, ImageClassifier) and domain.name in DIGITS_CLASSIFIERS:
        return digits_domain(domain.name, classifier=domain)
    raise InvalidInputError(f"pass a Domain (isgame.load_domain(classifier, train=..., real=...)): classifier "
                            f"{getattr(domain, 'name', type(domain).__name__)} has no built-in images")
