"""isgame's own metrics, registered in :mod:`isgame.scoring.metrics.registry` on import.

Each ``isgame metrics`` function reads :class:`~isgame.scoring.metrics.registry.MetricInputs` (float64 features of
REAL, FAKE and TRAIN); each matrix column states its family, direction, scope and citation, and the function
that fills it where ``isgame metrics`` has one (:data:`COLUMN_SOURCE_KEYS`).
"""

from __future__ import annotations

from isgame.scoring.metrics.fid import features_to_statistics, statistics_to_fid
from isgame.scoring.metrics.registry import QUALITY, MetricInputs, add_column, register_metric
from isgame.scoring.metrics.wavelet_fd import WAVELET_IMAGE_SIZE

@register_metric("fid", columns=("FID",), needs_real_features=False, headline=("fid",))
def _fid(inputs: MetricInputs) -> dict[str, object]:
    fake = features_to_statistics(inputs.fake, name="fake")
    return {"fid": statistics_to_fid(inputs.real_statistics, fake),
            "note": "biased upward at small N; compare FIDs only at equal sample counts"}


@register_metric("kid", columns=("KID",), headline=("mean", "std"))
def _kid(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.kid import kernel_inception_distance

    return kernel_inception_distance(inputs.real, inputs.fake, subsets=inputs.kid_subsets,
                                     subset_size=inputs.kid_subset_size, seed=inputs.seed).to_dict()


def _manifold(inputs: MetricInputs):
    from isgame.scoring.metrics.prdc import precision_recall_density_coverage

    return inputs.cached("prdc", lambda: precision_recall_density_coverage(inputs.real, inputs.fake))


@register_metric("precision-recall", columns=("precision", "recall"), headline=("precision", "recall"))
def _precision_recall(inputs: MetricInputs) -> dict[str, object]:
    result = _manifold(inputs)
    return {"precision": result.precision, "recall": result.recall, "k": 3}


@register_metric("density-coverage", columns=("density", "coverage"), headline=("density", "coverage"))
def _density_coverage(inputs: MetricInputs) -> dict[str, object]:
    result = _manifold(inputs)
    return {"density": result.density, "coverage": result.coverage, "k": 5}


@register_metric("ct", columns=("C_T",), needs_train=True, headline=("ct_statistic", "verdict"))
def _ct(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.copy_detectors import data_copying_test

    return {**data_copying_test(inputs.train, inputs.real, inputs.fake, seed=inputs.seed).to_dict(),
            **_copy_space(inputs)}


@register_metric("authenticity", columns=("authenticity",), needs_train=True, headline=("authenticity",))
def _authenticity(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.copy_detectors import authenticity

    return {"authenticity": authenticity(inputs.train, inputs.fake), **_copy_space(inputs)}


def _copy_space(inputs: MetricInputs) -> dict[str, str]:
    """Where the copying metrics measure, and why ``isgame check`` gives other figures on the same images."""
    return {"space": f"features ({inputs.fake.shape[1]}-d, the classifier's)", "held_out": "REAL",
            "check_differs": "isgame check measures C_T, authenticity and near-copies in pixels with its real "
                             "reference as the held-out set; distances between features and between pixels differ"}


@register_metric("vendi", columns=("Vendi",), headline=("vendi",))
def _vendi(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.vendi import vendi_score

    # the real set's diversity beside it, for scale
    return {**vendi_score(inputs.fake).to_dict(), "vendi_real": vendi_score(inputs.real).vendi}


@register_metric("sliced-wasserstein", columns=("SWD",), headline=("distance",))
def _sliced_wasserstein(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.sliced_wasserstein import sliced_wasserstein

    return sliced_wasserstein(inputs.real, inputs.fake, seed=inputs.seed).to_dict()


@register_metric("rbf-mmd", columns=("RBF-MMD",), headline=("mmd2", "bandwidth"))
def _rbf_mmd(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.rbf_mmd import rbf_mmd

    return rbf_mmd(inputs.real, inputs.fake).to_dict()


@register_metric("fld", columns=("FLD",), needs_train=True, headline=("fld", "gap"))
def _fld(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.fld import feature_likelihood_divergence

    return feature_likelihood_divergence(inputs.train, inputs.real, inputs.fake, seed=inputs.seed).to_dict()


@register_metric("fid-infinity", columns=("FID∞",), headline=("value_at_infinity",))
def _fid_infinity(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.infinity import fid_infinity

    return fid_infinity(inputs.real, inputs.fake, seed=inputs.seed).to_dict()


@register_metric("is-infinity", columns=("IS∞",), needs_logits=True, headline=("value_at_infinity",))
def _is_infinity(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.infinity import is_infinity

    return is_infinity(inputs.fake_logits, kind="logits", seed=inputs.seed).to_dict()


@register_metric("wavelet-fd", columns=("wavelet FD",), needs_images=True, headline=("distance",))
def _wavelet_fd(inputs: MetricInputs) -> dict[str, object]:
    from isgame.scoring.metrics.wavelet_fd import wavelet_frechet_distance

    return {**wavelet_frechet_distance(inputs.real_images, inputs.fake_images).to_dict(),
            "images": f"the classifier's input images, average-pooled to at most {WAVELET_IMAGE_SIZE} px a side"}


@register_metric("fid-b", columns=("FID-b",), needs_second=True, headline=("fid",))
def _fid_b(inputs: MetricInputs) -> dict[str, object]:
    real = features_to_statistics(inputs.second_real, name="real")
    return {"fid": statistics_to_fid(real, features_to_statistics(inputs.second_fake, name="fake")),
            "classifier": inputs.second_classifier,
            "note": "FID on a second, independently trained classifier's features (the robustness matrix's FID-b)"}


#: the keys of isgame's own metrics
BUILTIN_KEYS = ("fid", "kid", "precision-recall", "density-coverage", "ct", "authenticity", "vendi", "sliced-wasserstein", "rbf-mmd", "fld", "fid-infinity", "is-infinity", "wavelet-fd", "fid-b",)

#: the differentiable columns: the leaderboard attacks them through their own loss
DIFFERENTIABLE = ("IS", "exp(I)", "R-IS", "FID", "FID-b", "R-FID", "KID", "RBF-MMD", "SWD", "wavelet FD", "Vendi")
#: column -> the ``isgame metrics`` key that computes it (the others the matrix computes itself)
COLUMN_SOURCE_KEYS = {'FID': 'fid', 'KID': 'kid', 'precision': 'precision-recall', 'recall': 'precision-recall', 'density': 'density-coverage', 'coverage': 'density-coverage', 'C_T': 'ct', 'authenticity': 'authenticity', 'Vendi': 'vendi', 'SWD': 'sliced-wasserstein', 'RBF-MMD': 'rbf-mmd', 'FLD': 'fld', 'FID∞': 'fid-infinity', 'IS∞': 'is-infinity', 'wavelet FD': 'wavelet-fd', 'FID-b': 'fid-b'}

#: (name, family, higher_is_better, scope, description, citation[, needs]) of every column, in heatmap order
_COLUMNS = (
    ("IS", "classifier score", True, QUALITY, "Inception Score over contiguous splits",
            "Salimans et al., NeurIPS 2016: confident labels (quality) spread over the classes (diversity)"),
    ("exp(I)", "classifier score", True, QUALITY, "exp of the mutual information I(x; y), split-free",
            "Barratt & Sharma, 2018: the mutual information of image and label, as IS without splits"),
    ("R-IS", "classifier score", True, QUALITY, "IS through the adversarially trained classifier",
            "Alfarra et al., ECCV 2022: IS through a robust classifier, which pixel attacks move less", "robust"),
    ("IS∞", "classifier score", True, QUALITY, "IS extrapolated to infinite N",
            "Chong & Forsyth, CVPR 2020: IS without its dependence on N"),
    ("FID", "feature distance", False, QUALITY, "Fréchet distance of the classifier's features to the reference",
            "Heusel et al., NeurIPS 2017: quality and diversity in one distance between feature distributions"),
    ("FID∞", "feature distance", False, QUALITY, "FID extrapolated to infinite N",
            "Chong & Forsyth, CVPR 2020: FID without its dependence on N"),
    ("KID", "feature distance", False, QUALITY, "kernel (cubic polynomial) MMD^2, subsets",
            "Bińkowski et al., ICLR 2018: an unbiased distance between feature distributions"),
    ("RBF-MMD", "feature distance", False, QUALITY, "Gaussian-kernel MMD^2, median-distance bandwidth; the "
            "unbiased estimator (CMMD itself reports the biased one)",
            "Jayasumana et al., CVPR 2024 (CMMD): a distribution distance without FID's Gaussian assumption"),
    ("SWD", "feature distance", False, QUALITY, "sliced Wasserstein SW_2, 200 seeded projections (POT)",
            "Karras et al., ICLR 2018: a distribution distance over random one-dimensional projections"),
    ("FLD", "feature distance", False, ("fidelity", "diversity", "novelty"), "feature likelihood divergence: "
            "test NLL of a Gaussian mixture on the samples, bandwidths fitted to the training features, less a "
            "baseline; tested on C_T's held-out half",
            "Jiralerspong et al., NeurIPS 2023: fidelity, diversity and novelty (memorised samples score worse)"),
    ("R-FID", "feature distance", False, QUALITY, "FID on the adversarially trained classifier's features",
            "Alfarra et al., ECCV 2022: FID on a robust classifier's features", "robust"),
    ("FID-b", "feature distance", False, QUALITY, "FID on a second, independently trained classifier's features",
            "Heusel et al., NeurIPS 2017, on another network's features", "second"),
    ("precision", "k-NN manifold", True, ("fidelity",), "improved precision, k = 3",
            "Kynkäänniemi et al., NeurIPS 2019: the share of samples on the real manifold (fidelity only)"),
    ("recall", "k-NN manifold", True, ("diversity",), "improved recall, k = 3",
            "Kynkäänniemi et al., NeurIPS 2019: the share of real data the samples cover (diversity only)"),
    ("density", "k-NN manifold", True, ("fidelity",), "density, k = 5",
            "Naeem et al., ICML 2020: how many real neighbourhoods hold each sample (fidelity)"),
    ("coverage", "k-NN manifold", True, ("diversity",), "coverage, k = 5",
            "Naeem et al., ICML 2020: the share of real neighbourhoods that hold a sample (diversity)"),
    ("Vendi", "diversity", True, ("diversity",), "Vendi score, cosine kernel on the classifier's features: "
            "reference-free diversity (noise scores low: the classifier's features of noise are alike)",
            "Friedman & Dieng, TMLR 2023: the effective number of distinct samples"),
    ("wavelet FD", "pixel space", False, QUALITY, "Fréchet distance of Haar wavelet packets: no classifier "
            "involved", "Veeramacheneni et al., ICLR 2025: FID's distance on wavelet packets instead of a network"),
    ("C_T", "pixel space", None, ("novelty",), "data-copying test statistic",
            "Meehan et al., AISTATS 2020: samples nearer the training set than held-out data are (copying)"),
    ("authenticity", "pixel space", True, ("novelty",), "fraction of authentic samples",
            "Alaa et al., ICML 2022: the share of samples that are not copies of a training point"),
)


for _name, _family, _higher, _scope, _description, _citation, *_needs in _COLUMNS:
    add_column(_name, _family, _higher, _scope, _description, _citation, needs=_needs[0] if _needs else None,
               source=COLUMN_SOURCE_KEYS.get(_name), differentiable=_name in DIFFERENTIABLE)
