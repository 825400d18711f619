"""isgame: how easily the Inception Score is gamed, and how robust the alternatives are.

One import gives the whole toolkit::

    import isgame

    result = isgame.inception_score(logits, splits=10)        # (N, K) logits or probabilities
    print(result.is_mean, result.mutual_information_bits)

    fid = isgame.frechet_distance(real_features, fake_features)  # (N, D) each

Layers:

* the science returns typed results and writes nothing unless asked: :mod:`isgame.scoring`
  (metrics, classifiers, loaders, distributed helpers), :mod:`isgame.attacks` (gaming the score)
  and :mod:`isgame.probes` (what the score cannot see, the robustness matrix, claim checks);
* the application composes it and writes reports, figures and tables: :mod:`isgame.app`
  (the audit, ``check``, the matrix runner, output folders, the HTML page);
* :mod:`isgame.cli` is the ``isgame`` command, one library call per command.

Every name in ``__all__`` is imported on first use, so ``import isgame`` (and the command line)
starts without loading torch until a metric is needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from isgame import _moved

_moved.install()  # modules that moved in 0.3 keep their old names, with a DeprecationWarning, until 0.4

#: public name -> the module that defines it
_API: dict[str, str] = {
    # the Inception Score: one-shot and streaming, classic and mutual information
    "inception_score": "isgame.scoring.metrics.inception_score",
    "mutual_information": "isgame.scoring.metrics.inception_score",
    "InceptionScoreResult": "isgame.scoring.metrics.score_result",
    "InceptionScoreAccumulator": "isgame.scoring.metrics.accumulator",
    "KLDeviationAccumulator": "isgame.scoring.metrics.accumulator",
    "StreamingMetric": "isgame.scoring.metrics.streaming",
    "dialect_table": "isgame.scoring.metrics.dialects",
    "score_dialect": "isgame.scoring.metrics.dialects",
    # FID (one-shot and streaming), KID, precision / recall / density / coverage
    "frechet_distance": "isgame.scoring.metrics.fid",
    "features_to_statistics": "isgame.scoring.metrics.fid",
    "statistics_to_fid": "isgame.scoring.metrics.fid",
    "FeatureStatistics": "isgame.scoring.metrics.fid",
    "FeatureStatisticsAccumulator": "isgame.scoring.metrics.fid",
    "FrechetDistanceAccumulator": "isgame.scoring.metrics.fid",
    "load_statistics": "isgame.scoring.metrics.fid",
    "save_statistics": "isgame.scoring.metrics.fid",
    "kernel_inception_distance": "isgame.scoring.metrics.kid",
    "KidResult": "isgame.scoring.metrics.kid",
    "precision_recall_density_coverage": "isgame.scoring.metrics.prdc",
    "PrecisionRecallResult": "isgame.scoring.metrics.prdc",
    # the newer metrics: diversity, distances on features and pixels, likelihood, N = infinity
    "vendi_score": "isgame.scoring.metrics.vendi",
    "vendi_score_of_kernel": "isgame.scoring.metrics.vendi",
    "VendiResult": "isgame.scoring.metrics.vendi",
    "sliced_wasserstein": "isgame.scoring.metrics.sliced_wasserstein",
    "SlicedWassersteinResult": "isgame.scoring.metrics.sliced_wasserstein",
    "rbf_mmd": "isgame.scoring.metrics.rbf_mmd",
    "RbfMmdResult": "isgame.scoring.metrics.rbf_mmd",
    "feature_likelihood_divergence": "isgame.scoring.metrics.fld",
    "fld_baseline_nll": "isgame.scoring.metrics.fld",
    "FldResult": "isgame.scoring.metrics.fld",
    "wavelet_frechet_distance": "isgame.scoring.metrics.wavelet_fd",
    "WaveletDistanceResult": "isgame.scoring.metrics.wavelet_fd",
    "fid_infinity": "isgame.scoring.metrics.infinity",
    "is_infinity": "isgame.scoring.metrics.infinity",
    "ExtrapolationResult": "isgame.scoring.metrics.infinity",
    # copy detectors
    "data_copying_test": "isgame.scoring.metrics.copy_detectors",
    "authenticity": "isgame.scoring.metrics.copy_detectors",
    "nearest_training_test": "isgame.scoring.metrics.copy_detectors",
    # classifiers and images
    "load_classifier": "isgame.scoring.classifiers",
    "Domain": "isgame.scoring.domains",
    "load_domain": "isgame.scoring.domains",
    "digits_domain": "isgame.scoring.domains",
    "ImageClassifier": "isgame.scoring.classifiers",
    "set_default_device": "isgame.scoring.classifiers",
    "open_images": "isgame.scoring.sources.samples",
    "ImageSource": "isgame.scoring.sources.samples",
    "classify": "isgame.scoring.pipeline",
    "classify_with_features": "isgame.scoring.pipeline",
    # the defended score's classifier (digits-robust): PGD adversarial training and robust accuracy
    "train_digits_cnn": "isgame.scoring.classifiers.digits",
    "robust_accuracy": "isgame.scoring.classifiers.adversarial_training",
    "RobustAccuracy": "isgame.scoring.classifiers.adversarial_training",
    # weights you can trust: the known Inception files, where they are cached, fetch (the only download) and verify
    "fetch_weights": "isgame.scoring.classifiers.weights_fetch",
    "WeightsFetchResult": "isgame.scoring.classifiers.weights_fetch",
    "WeightsDownloadError": "isgame.scoring.classifiers.weights_fetch",
    "verify_weights": "isgame.scoring.classifiers.weights_registry",
    "WeightsVerification": "isgame.scoring.classifiers.weights_registry",
    "weights_path": "isgame.scoring.classifiers.weights_registry",
    "list_weights": "isgame.scoring.classifiers.weights_registry",
    "WeightsStatus": "isgame.scoring.classifiers.weights_registry",
    # gaming the score
    "InflateAttack": "isgame.attacks.inflate",
    "InflateResult": "isgame.attacks.inflate_result",
    "class_shifts": "isgame.attacks.class_shift",
    "targeted_pgd": "isgame.attacks.bounded",
    "bounded_sweep": "isgame.attacks.bounded",
    "maximise_score": "isgame.attacks.ball_ascent",
    "BoundedAttackResult": "isgame.attacks.ball_ascent_result",
    "ScoreProtocol": "isgame.attacks.score_protocol",
    "toy_counterexample": "isgame.attacks.toy",
    # what the score cannot see
    "check_claim": "isgame.probes.claim",
    "CheckResult": "isgame.probes.claim",
    "robustness_matrix": "isgame.probes.matrix",
    "robustness_leaderboard": "isgame.probes.leaderboard",
    "memorization_probe": "isgame.probes.memorization",
    "noise_baselines": "isgame.probes.noise_baselines",
    "sensitivity_probe": "isgame.probes.sensitivity",
    "domain_probe": "isgame.probes.domain",
    # the application: the audit and the library call behind every other command
    "audit": "isgame.app.audit",
    "AuditReport": "isgame.app.audit",
    "score_source": "isgame.app.scoring_commands",
    "score_in_dialects": "isgame.app.scoring_commands",
    "fid_between": "isgame.app.scoring_commands",
    "compute_metrics": "isgame.app.metrics_command",
    "MetricsResult": "isgame.app.metrics_command",
    "register_metric": "isgame.scoring.metrics.registry",
    "unregister_metric": "isgame.scoring.metrics.registry",
    "MetricInputs": "isgame.scoring.metrics.registry",
    "register_game": "isgame.probes.matrix.games",
    "load_plugin": "isgame.scoring.runtime.plugins",
    "run_inflate": "isgame.app.attack_commands",
    "run_bounded": "isgame.app.attack_commands",
    "run_toy": "isgame.app.attack_commands",
    "run_probe": "isgame.app.probe_commands",
    "run_matrix": "isgame.app.probe_commands",
    "run_robustness": "isgame.app.robustness_command",
    "run_check": "isgame.app.check",
    # provenance, sample order, comparing results, reference statistics
    "Provenance": "isgame.scoring.provenance",
    "make_provenance": "isgame.scoring.provenance",
    "InputFingerprint": "isgame.scoring.sources.fingerprint",
    "runs_test": "isgame.scoring.metrics.sample_order",
    "RunsCounter": "isgame.scoring.metrics.sample_order",
    "RunsTestResult": "isgame.scoring.metrics.sample_order",
    "compare_files": "isgame.app.compare_command",
    "compare_results": "isgame.scoring.compare",
    "Comparison": "isgame.scoring.compare",
    "save_stats": "isgame.app.scoring_commands",
    "load_reference_stats": "isgame.scoring.sources.stats_file",
    "ReferenceStats": "isgame.scoring.sources.stats_file",
    "StatsKey": "isgame.scoring.sources.stats_file",
    # errors
    "IsgameError": "isgame.scoring.errors",
    "InvalidInputError": "isgame.scoring.errors",
    "InvalidTypeError": "isgame.scoring.errors",
    "SourceNotFoundError": "isgame.scoring.errors",
}

__all__ = ["__version__", *_API]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("isgame")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


__version__ = _version()


#: the subpackages, importable as attributes too (``isgame.scoring.metrics.fid``)
_SUBMODULES = ("scoring", "attacks", "probes", "app", "cli")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"isgame.{name}")
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'isgame' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API) | set(_SUBMODULES))


if TYPE_CHECKING:  # static analysers and IDEs see the real objects
    from isgame.app.attack_commands import run_bounded, run_inflate, run_toy
    from isgame.app.audit import AuditReport, audit
    from isgame.app.check import run_check
    from isgame.app.metrics_command import MetricsResult, compute_metrics
    from isgame.probes.matrix.games import register_game
    from isgame.scoring.metrics.registry import MetricInputs, register_metric, unregister_metric
    from isgame.scoring.runtime.plugins import load_plugin
    from isgame.app.probe_commands import run_matrix, run_probe
    from isgame.app.robustness_command import run_robustness
    from isgame.app.scoring_commands import fid_between, score_in_dialects, score_source
    from isgame.attacks.ball_ascent import maximise_score
    from isgame.attacks.ball_ascent_result import BoundedAttackResult
    from isgame.attacks.bounded import bounded_sweep, targeted_pgd
    from isgame.attacks.class_shift import class_shifts
    from isgame.attacks.inflate import InflateAttack
    from isgame.attacks.inflate_result import InflateResult
    from isgame.attacks.score_protocol import ScoreProtocol
    from isgame.attacks.toy import toy_counterexample
    from isgame.probes.claim import CheckResult, check_claim
    from isgame.scoring.metrics.copy_detectors import authenticity, data_copying_test, nearest_training_test
    from isgame.probes.domain import domain_probe
    from isgame.probes.leaderboard import robustness_leaderboard
    from isgame.probes.matrix import robustness_matrix
    from isgame.probes.memorization import memorization_probe
    from isgame.probes.noise_baselines import noise_baselines
    from isgame.probes.sensitivity import sensitivity_probe
    from isgame.scoring.metrics.accumulator import InceptionScoreAccumulator, KLDeviationAccumulator
    from isgame.scoring.classifiers import ImageClassifier, load_classifier, set_default_device
    from isgame.scoring.classifiers.adversarial_training import RobustAccuracy, robust_accuracy
    from isgame.scoring.classifiers.digits import train_digits_cnn
    from isgame.scoring.classifiers.weights_fetch import WeightsDownloadError, WeightsFetchResult, fetch_weights
    from isgame.scoring.classifiers.weights_registry import (WeightsStatus, WeightsVerification, list_weights,
                                                             verify_weights, weights_path)
    from isgame.scoring.domains import Domain, digits_domain, load_domain
    from isgame.scoring.metrics.dialects import dialect_table, score_dialect
    from isgame.scoring.errors import InvalidInputError, InvalidTypeError, IsgameError, SourceNotFoundError
    from isgame.scoring.metrics.fid import (FeatureStatistics, FeatureStatisticsAccumulator, FrechetDistanceAccumulator,
                                    features_to_statistics, frechet_distance, load_statistics, save_statistics,
                                    statistics_to_fid)
    from isgame.scoring.metrics.inception_score import inception_score, mutual_information
    from isgame.scoring.metrics.kid import KidResult, kernel_inception_distance
    from isgame.scoring.pipeline import classify, classify_with_features
    from isgame.scoring.metrics.prdc import PrecisionRecallResult, precision_recall_density_coverage
    from isgame.scoring.metrics.fld import FldResult, feature_likelihood_divergence, fld_baseline_nll
    from isgame.scoring.metrics.infinity import ExtrapolationResult, fid_infinity, is_infinity
    from isgame.scoring.metrics.rbf_mmd import RbfMmdResult, rbf_mmd
    from isgame.scoring.metrics.sliced_wasserstein import SlicedWassersteinResult, sliced_wasserstein
    from isgame.scoring.metrics.vendi import VendiResult, vendi_score, vendi_score_of_kernel
    from isgame.scoring.metrics.wavelet_fd import WaveletDistanceResult, wavelet_frechet_distance
    from isgame.scoring.sources.samples import ImageSource, open_images
    from isgame.scoring.metrics.score_result import InceptionScoreResult
    from isgame.scoring.metrics.streaming import StreamingMetric
