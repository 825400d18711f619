"""User classifiers: a TorchScript file or a Python factory, with a declared input and normalisation.

Spec: ``torchscript:PATH[?OPTIONS]`` or ``package.module:function[?OPTIONS]``, where OPTIONS are
``size=HxW``, ``channels=1|3`` (default 3), ``mean=a[,b,c]`` and ``std=a[,b,c]`` (defaults 0 and 1: no
normalisation), e.g. ``torchscript:net.pt?size=32x32&mean=0.5&std=0.5``.

A network with global pooling takes any size, so a wrong one fails nowhere and moves every figure.
The size is therefore never assumed: a spec without ``size=`` is refused by :func:`load_user_classifier`;
:func:`with_input_size` reads it from the images a command scores when every one of them has the same
size (a note says so), and refuses otherwise.

The module maps normalised input (N, channels, H, W) to logits (N, K), or to a tuple
(logits, features); otherwise ``features()`` is the logits themselves (``features_are_logits``, in
``describe``, and :func:`features_note` says so wherever features are used).
K is read from one forward pass on zeros. Loading a factory imports and runs the user's own
code, which is what the user asked for; a TorchScript file runs in TorchScript's interpreter.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import sys
import warnings
from pathlib import Path
from urllib.parse import parse_qs

import torch
from torch import nn

from isgame.scoring.classifiers.base import ImageClassifier
from isgame.scoring.errors import InvalidInputError, SourceNotFoundError
from isgame.scoring.notes import Note

FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_user_classifier(name: str) -> bool:
    base = name.split("?", 1)[0]
    return base.startswith("torchscript:") or bool(FACTORY_PATTERN.match(base))


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InvalidInputError(f"classifier option {option}={text!r}: expected numbers such as 0.5 or 0.5,0.5,0.5") from None


def parse_options(query: str) -> dict[str, object]:
    """``size=32x32&channels=3&mean=0.5&std=0.5`` -> typed options, with defaults; ``input_size`` is None when the
    query declares no size."""
    raw = {key: values[-1] for key, values in parse_qs(query, keep_blank_values=True).items()}
    unknown = set(raw) - {"size", "channels", "mean", "std"}
    if unknown:
        raise InvalidInputError(f"unknown classifier option(s) {', '.join(sorted(unknown))}; use size, channels, mean, std")
    size = None
    if "size" in raw:
        size_match = re.fullmatch(r"(\d+)x(\d+)", raw["size"])
        if size_match is None or min(int(size_match[1]), int(size_match[2])) < 1:
            raise InvalidInputError(f"classifier option size={raw.get('size')!r}: expected HxW such as 32x32")
        size = (int(size_match[1]), int(size_match[2]))
    channels = raw.get("channels", "3")
    if channels not in ("1", "3"):
        raise InvalidInputError(f"classifier option channels={channels!r}: expected 1 or 3")
    return {"input_size": size, "input_channels": int(channels),
            "mean": _floats(raw.get("mean", "0"), "mean"), "std": _floats(raw.get("std", "1"), "std")}


def declares_size(spec: str) -> bool:
    """Whether ``spec`` fixes its input size: every classifier but a user's without ``size=``."""
    if not is_user_classifier(spec):
        return True
    return "size" in parse_qs(spec.partition("?")[2], keep_blank_values=True)


def with_input_size(spec: str, sources: "list[str | None]", *, notes: list | None = None) -> str:
    """``spec`` as is when it declares its input size (or is no user classifier); else ``spec`` with
    ``size=HxW`` of the images in ``sources`` (a note in ``notes`` says so), when every image they hold has that
    one size. Refused in one line, naming ``?size=``, when they hold no images or images of several sizes.

    Reading the sizes decodes image headers only (:func:`~isgame.scoring.sources.samples.image_sizes`). Without
    images (noise is made at whatever size is asked) ``spec`` is returned as is, and loading it refuses it once
    its file or factory is found."""
    if declares_size(spec):
        return spec
    from isgame.scoring.sources.samples import image_sizes

    named = [source for source in sources if source is not None]
    sizes: dict[tuple[int, int], list[str]] = {}
    for source in named:
        for size in image_sizes(source):
            sizes.setdefault(size, []).append(source)
    base = spec.partition("?")[0]
    if not sizes:
        return spec
    if len(sizes) > 1:
        listed = ", ".join(f"{h}x{w} ({', '.join(where)})" for (h, w), where in sorted(sizes.items())[:4])
        raise InvalidInputError(f"classifier {base} declares no input size and the images come in {len(sizes)} sizes "
                                f"({listed}); declare it as {base}?size=HxW, the size the network was trained at")
    (height, width), = sizes
    if notes is not None:
        notes.append(Note(f"classifier {base} declares no input size: using {height}x{width}, the size of every image "
                          f"of {', '.join(named)}; declare it as ?size=HxW if the network was trained at another"))
    return f"{spec}{'&' if '?' in spec else '?'}size={height}x{width}"


def features_note(classifier: ImageClassifier) -> list[Note]:
    """A note when ``classifier``'s features are its logits (a module that returns no features), else none."""
    if not getattr(classifier, "features_are_logits", False):
        return []
    return [Note(f"classifier {classifier.name} returns only logits, so its features are the {classifier.feature_dim}-d "
                 "logits: FID, KID and every other feature metric are computed on them; return (logits, features) "
                 "from forward to use its penultimate features")]


class UserClassifier(ImageClassifier):
    """A user's module behind the :class:`ImageClassifier` interface."""

    def __init__(self, module: nn.Module, *, name: str, input_size: tuple[int, int], input_channels: int,
                 mean: tuple[float, ...], std: tuple[float, ...], fingerprint: str = "", **preprocessing) -> None:
        super().__init__(**preprocessing)
        if any(s <= 0 for s in std):
            raise InvalidInputError(f"classifier option std must be > 0, got {std}")
        self.name = name
        self.module = module.eval()
        self.input_size = input_size
        self.input_channels = input_channels
        self.fingerprint = fingerprint
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))
        try:
            with torch.no_grad():
                output = self.module((torch.zeros(1, input_channels, *input_size) - self.mean) / self.std)
                logits, features = _logits_and_features_of(output)
        except (RuntimeError, ValueError, TypeError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
            raise InvalidInputError(
                f"{name} fails on input of shape (1, {input_channels}, {input_size[0]}, {input_size[1]}) ({first}); "
                f"declare the input it takes with ?size=HxW&channels=C") from None
        if logits.ndim != 2 or logits.shape[1] < 2:
            raise InvalidInputError(f"{name}: the module must return logits of shape (N, K >= 2), got {tuple(logits.shape)}")
        self.num_classes = logits.shape[1]
        self.feature_dim = features.shape[1]
        #: the module returns logits alone, so ``features()`` gives the logits
        self.features_are_logits = not isinstance(output, (tuple, list))
        self.train(False)

    def _logits_and_features(self, model_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _logits_and_features_of(self.module((model_input - self.mean) / self.std))

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "fingerprint": self.fingerprint, "mean": self.mean.flatten().tolist(),
                "std": self.std.flatten().tolist(), "features_are_logits": self.features_are_logits}


def _logits_and_features_of(output) -> tuple[torch.Tensor, torch.Tensor]:
    """A module's output as (logits, features): a tuple's first two entries, or the logits twice."""
    if isinstance(output, (tuple, list)):
        return output[0], output[1]
    return output, output


def import_from_here(module_name: str):
    """Import ``module_name``; if its top-level package is not importable, look in the current working folder too.

    The working folder is on ``sys.path`` only for that one import (as ``python -m`` would put it there),
    so a later import never finds a module there by accident.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        top_level = module_name.split(".", 1)[0]
        here = os.getcwd()
        if error.name != top_level or here in sys.path or "" in sys.path:
            raise
    sys.path.insert(0, here)
    try:
        importlib.invalidate_caches()
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(here)


def load_user_classifier(spec: str, **preprocessing) -> UserClassifier:
    """Load ``torchscript:PATH[?...]`` or ``module:function[?...]``."""
    base, _, query = spec.partition("?")
    options = parse_options(query)
    if base.startswith("torchscript:"):
        path = Path(base.split(":", 1)[1])
        if not path.is_file():
            raise SourceNotFoundError(f"TorchScript file {path} not found; save your model with torch.jit.save")
        try:
            with warnings.catch_warnings():
                # torch deprecates TorchScript in favour of torch.export; users still ship TorchScript files.
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except (RuntimeError, ValueError) as error:
            raise InvalidInputError(f"{path} is not a TorchScript archive ({str(error).splitlines()[0][:160]}); "
                                    "save it with torch.jit.save(torch.jit.script(model), PATH)") from None
        fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        module_name, function_name = base.split(":", 1)
        try:
            factory = getattr(import_from_here(module_name), function_name)
        except (ImportError, AttributeError) as error:
            raise InvalidInputError(f"cannot load classifier factory {base!r} ({error}); is the module importable "
                                    "from the working folder or PYTHONPATH?") from None
        module = factory()
        if not isinstance(module, nn.Module):
            raise InvalidInputError(f"{base} returned {type(module).__name__}, expected a torch.nn.Module")
        fingerprint = base
    if options["input_size"] is None:
        raise InvalidInputError(f"classifier {base} declares no input size; declare it as {base}?size=HxW (e.g. "
                                "?size=32x32), the size the network was trained at: a network with global pooling "
                                "takes any size, so a wrong one fails nowhere")
    return UserClassifier(module, name=base, fingerprint=fingerprint, **options, **preprocessing)
