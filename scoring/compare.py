"""May two IS results be compared? Which protocol fields differ, and how far those alone move the score.

Takes two results that carry a ``provenance`` block (``isgame score``, with or without ``--dialect``; the
application reads them from their JSON files, :mod:`isgame.app.compare_command`) and answers three questions:

1. **Which protocol fields differ**: classifier, weights SHA-256, K, preprocessing, dtype, device,
   precision, seed, dialect, N, splits, shuffle, and the input fingerprint.
2. **Does the difference exceed what those fields alone can move it?** Each field that differs gets an
   allowance in IS units, and their sum is compared with |IS_B - IS_A|:

   * ``splits`` / ``n`` (split bias): with S splits of N/S rows each split's marginal comes from N/S
     rows; the plug-in entropy of a marginal from m rows is low by about (K_eff - 1) / (2m) nats
     (Miller 1955), so log IS_S ~ log IS_1 - (K_eff - 1)(S - 1) / (2N), K_eff the classes predicted.
     The measured split bias of a result is exact instead: ``improved_is`` is the classic IS with one
     split (one marginal over all N), so ``improved_is - is_mean`` is what S splits cost. The
     allowance is the difference of the two measured biases; the formula is shown beside it.
   * ``seed`` (rows shuffled in both): a reshuffle moves the mean over splits by about its standard
     error is_std / sqrt(S); the allowance is 2 sqrt(se_A^2 + se_B^2). Where only one result was shuffled,
     its seed draws that one order, whose effect the ``shuffled`` field already allows for: 0 here.
   * ``shuffled``: where a result ran the order test with both scores (``sample_order``), their gap;
     otherwise as ``seed``.
   * ``dialect``: the measured dialect spread (``spread_percent`` of an ``isgame score --dialect all``
     table of the same samples) times the mean score; unknown without one.
   * ``device``, ``isgame_version``: no allowance (round-off; code changes), reported only.
   * classifier, weights, K, preprocessing, dtype, precision: not bounded; they change the classifier's
     outputs, so the results are not comparable whatever the difference.
   * the input fingerprint: different samples; only the standard error speaks to that.
3. **Does it exceed the standard error?** se = is_std / sqrt(S) of each result (with one split, the
   delta-method se of exp(I), improved_is * stderr(I)); the difference is significant when
   |IS_B - IS_A| > 2 sqrt(se_A^2 + se_B^2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from isgame.scoring.errors import parameter, remedy

#: fields whose difference changes the classifier's outputs: no allowance bounds their effect
UNBOUNDED_FIELDS = ("classifier", "weights_sha256", "num_classes", "preprocessing", "dtype", "precision")
#: fields reported but given no allowance
INFORMATIONAL_FIELDS = ("device", "isgame_version")
#: how many standard errors make a difference significant
SIGNIFICANCE_SE = 2.0


@dataclass(frozen=True)
class ScoredResult:
    """What compare needs from one result file: the score, its spread, and its provenance."""

    path: str
    is_mean: float
    is_std: float
    splits: int
    n: int
    improved_is: float | None
    mi_stderr_nats: float | None
    class_counts: list[int] | None
    provenance: dict
    sample_order: dict | None

    @property
    def standard_error(self) -> float:
        """is_std / sqrt(S); with one split, the delta-method se of exp(I) where known, else 0."""
        if self.splits > 1:
            return self.is_std / math.sqrt(self.splits)
        if self.improved_is is not None and self.mi_stderr_nats is not None:
            return self.improved_is * self.mi_stderr_nats
        return 0.0

    @property
    def measured_split_bias(self) -> float | None:
        """improved_is - is_mean: what S splits cost against one marginal over all N (None if unknown)."""
        return None if self.improved_is is None else self.improved_is - self.is_mean

    def formula_split_bias(self) -> float | None:
        """IS * (1 - exp(-(K_eff - 1)(S - 1) / (2N))), the Miller-Madow estimate of the same cost."""
        if self.class_counts is None or self.improved_is is None:
            return None
        k_eff = sum(1 for count in self.class_counts if count > 0)
        return self.improved_is * (1 - math.exp(-(k_eff - 1) * (self.splits - 1) / (2 * self.n)))


def protocol_fields(provenance: dict) -> dict[str, object]:
    """The comparable fields of a provenance block, flattened: name -> value."""
    classifier = provenance.get("classifier") or {}
    samples = next((record for record in provenance.get("inputs", []) if record.get("role") == "samples"), None)
    fingerprint = None if samples is None or samples.get("fingerprint") is None else samples["fingerprint"].get("sha256")
    return {"classifier": classifier.get("name"), "weights_sha256": classifier.get("weights_sha256"),
            "num_classes": provenance.get("num_classes"), "preprocessing": provenance.get("preprocessing"),
            "dtype": provenance.get("dtype"), "precision": provenance.get("precision"),
            "device": provenance.get("device"), "isgame_version": provenance.get("isgame_version"),
            "dialect": provenance.get("dialect"), "n": provenance.get("n"), "splits": provenance.get("splits"),
            "shuffled": provenance.get("shuffled"), "seed": provenance.get("seed"), "input_sha256": fingerprint}


@dataclass(frozen=True)
class FieldDifference:
    """One protocol field: its value in A and B, and how far (IS units) it alone can move the score.

    ``allowance`` is None when the field is not bounded (or its bound is unknown); ``how`` says why.
    """

    field: str
    a: object
    b: object
    allowance: float | None
    how: str


@dataclass(frozen=True)
class Comparison:
    """Whether result B may be compared with result A, and why. Scores in IS units."""

    a: str
    b: str
    is_a: float
    is_b: float
    difference: float
    differences: list[FieldDifference]
    allowance: float | None
    exceeds_protocol: bool | None
    standard_error: float
    z: float | None
    exceeds_standard_error: bool
    comparable: bool
    verdict: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _reshuffle_allowance(a: ScoredResult, b: ScoredResult) -> float:
    return SIGNIFICANCE_SE * math.hypot(a.is_std / math.sqrt(a.splits), b.is_std / math.sqrt(b.splits))


def _split_allowance(a: ScoredResult, b: ScoredResult) -> tuple[float | None, str]:
    """The difference of the two measured split biases, with the Miller-Madow formula beside it."""
    measured = (a.measured_split_bias, b.measured_split_bias)
    formula = (a.formula_split_bias(), b.formula_split_bias())
    if None in measured:
        return None, f"split bias unknown (a dialect result has no one-marginal IS); rerun {remedy('isgame score', 'isgame.score_source')}"
    text = (f"split bias measured (exp(I) - IS): {measured[0]:.4f} at S = {a.splits}, {measured[1]:.4f} at "
            f"S = {b.splits}")
    if None not in formula:
        text += f"; Miller-Madow (K_eff - 1)(S - 1)/(2N): {formula[0]:.4f} and {formula[1]:.4f}"
    return abs(measured[1] - measured[0]), text


def _order_allowance(a: ScoredResult, b: ScoredResult) -> tuple[float, str]:
    for result in (a, b):
        order = result.sample_order or {}
        if order.get("is_shuffled") is not None:
            gap = abs(order["is_shuffled"] - order["is_contiguous"])
            return gap, f"the order test's two scores of {Path(result.path).name} differ by {gap:.4f}"
    return _reshuffle_allowance(a, b), "no clustered order found: as a reshuffle, 2 se of the split mean"


def _one_shuffled_seed_allowance(a: ScoredResult, b: ScoredResult, *, shuffled_is_a: bool) -> tuple[float, str]:
    """The seed where only one result was shuffled: the other's seed drew nothing. The ``shuffled`` row measured the
    reorder with the order test's own shuffle; a shuffle under another seed is a second random order, about sqrt(2)
    standard errors of the shuffled result's split mean away from it."""
    (name, shuffled), (other_name, _) = (("A", a), ("B", b)) if shuffled_is_a else (("B", b), ("A", a))
    test = next((result.sample_order for result in (a, b)
                 if (result.sample_order or {}).get("is_shuffled") is not None), None)
    seed = shuffled.provenance.get("seed")
    if test is None or test.get("seed") == seed:
        return 0.0, (f"{other_name} was not shuffled, so its seed drew nothing; {name}'s shuffle is allowed for in the "
                     "shuffled row")
    se = shuffled.is_std / math.sqrt(shuffled.splits)
    return SIGNIFICANCE_SE * math.sqrt(2) * se, (
        f"{other_name} was not shuffled, so its seed drew nothing; {name}'s shuffle (seed {seed}) and the order test's "
        f"(seed {test.get('seed')}) are two random orders: 2 sqrt(2) se_{name}")


def field_allowance(name: str, a: ScoredResult, b: ScoredResult,
                    dialect_spread: float | None) -> tuple[float | None, str]:
    """How far (IS units) a difference in field ``name`` alone can move the score; None if unbounded/unknown."""
    if name in UNBOUNDED_FIELDS:
        return None, "changes the classifier's outputs: not bounded, the results are not comparable"
    if name in INFORMATIONAL_FIELDS:
        return 0.0, "no allowance (round-off, or code changes between versions)"
    if name in ("splits", "n"):
        return _split_allowance(a, b)
    if name == "seed":
        shuffled = [bool(result.provenance.get("shuffled")) for result in (a, b)]
        if not any(shuffled):
            return 0.0, "rows not shuffled in either: the seed draws nothing that the score uses"
        if not all(shuffled):
            return _one_shuffled_seed_allowance(a, b, shuffled_is_a=shuffled[0])
        return _reshuffle_allowance(a, b), "a reshuffle: 2 se of the split mean, 2 sqrt(se_A^2 + se_B^2)"
    if name == "shuffled":
        return _order_allowance(a, b)
    if name == "dialect":
        if dialect_spread is None:
            return None, (f"dialect spread unknown: pass the table of every dialect of these samples (isgame score "
                          f"in dialect all) as {parameter('dialect_spread')}")
        return dialect_spread / 100 * (a.is_mean + b.is_mean) / 2, f"measured dialect spread {dialect_spread:.2f}%"
    if name == "input_sha256":
        return 0.0, "different samples: judged by the standard error below"
    return None, "unknown field"


def compare_results(a: ScoredResult, b: ScoredResult, *, dialect_spread: float | None = None) -> Comparison:
    """Compare B with A: differing fields, their allowance, and the standard error (see the module docstring)."""
    fields_a, fields_b = protocol_fields(a.provenance), protocol_fields(b.provenance)
    differences = []
    for name in fields_a:
        if fields_a[name] != fields_b[name]:
            allowance, how = field_allowance(name, a, b, dialect_spread)
            differences.append(FieldDifference(name, fields_a[name], fields_b[name], allowance, how))
    difference = b.is_mean - a.is_mean
    unbounded = [d.field for d in differences if d.allowance is None]
    allowance = None if unbounded else sum(d.allowance for d in differences)
    exceeds = None if allowance is None else abs(difference) > allowance + 1e-12 * max(abs(a.is_mean), 1.0)
    se = math.hypot(a.standard_error, b.standard_error)
    z = difference / se if se > 0 else None
    significant = z is not None and abs(z) > SIGNIFICANCE_SE
    comparable = not any(d.field in UNBOUNDED_FIELDS for d in differences)
    verdict = _verdict(differences, difference, allowance, exceeds, significant, comparable, unbounded)
    return Comparison(a=a.path, b=b.path, is_a=a.is_mean, is_b=b.is_mean, difference=difference,
                      differences=differences, allowance=allowance, exceeds_protocol=exceeds, standard_error=se, z=z,
                      exceeds_standard_error=significant, comparable=comparable, verdict=verdict)


def _listed(names: list[str]) -> str:
    """``seed``, ``shuffled and seed``, ``n, splits and seed``."""
    return ", ".join(names) if len(names) < 2 else f"{', '.join(names[:-1])} and {names[-1]}"


def _verdict(differences, difference, allowance, exceeds, significant, comparable, unbounded) -> str:
    fields = [d.field for d in differences]
    names = _listed(fields)
    move = "moves" if len(fields) == 1 else "move"
    noise = (f"it {'exceeds' if significant else 'is within'} {SIGNIFICANCE_SE:g} standard errors")
    if not differences:
        return f"same protocol and inputs; the scores differ by {difference:+.4f}, {noise}"
    if not comparable:
        return f"not comparable: {', '.join(unbounded)} differ, which change the classifier's outputs"
    if allowance is None:
        return f"cannot tell: {', '.join(unbounded)} differ and their effect is unknown; {noise}"
    if exceeds:
        return f"the difference {difference:+.4f} exceeds what {names} alone {move} IS ({allowance:.4f}); {noise}"
    return f"the difference {difference:+.4f} is within what {names} alone {move} IS ({allowance:.4f}); {noise}"
