"""The audit's ``report.html``: one self-contained page (figures embedded as data URIs) that a
reviewer can open offline. A small script marks, once the page has loaded, how many figures
decoded, so a headless browser test can check them.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .8em 0; }
td, th { border: 1px solid #ddd; padding: .25em .55em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.headline { background: #fff4e5; border-left: 4px solid #f0a030; padding: .8em 1em; font-size: 1.05em; }
.published { color: #666; font-style: italic; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.missed { background: #fb6a4a; } .detected { background: #9ecae1; } .false_alarm { background: #fdae6b; }
.no_alarm { background: #c7e9c0; } .not_applicable { background: #f0f0f0; color: #777; }
"""

SCRIPT = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var status = document.getElementById('figures-status');
  status.textContent = 'figures loaded: ' + loaded + ' of ' + images.length;
  status.setAttribute('data-loaded', String(loaded));
  status.setAttribute('data-total', String(images.length));
});
"""


def _figure(folder: Path, filename: str, caption: str) -> str:
    data = base64.b64encode((folder / filename).read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(header: list[str], rows: list[list[object]], classes: list[list[str]] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            css = f' class="{classes[i][j]}"' if classes and classes[i][j] else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _page(title: str, parts: list[str]) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body>{chr(10).join(parts)}</body></html>")


def _noun(report: dict) -> str:
    """What the domain's real images are called: "digits" on the built-in domain, "real images" on any other."""
    return report.get("domain", {}).get("noun", "real images")


def _headline(report: dict) -> list[str]:
    h = report["headline"]
    domain = report.get("domain") or {}
    shape = "x".join(str(d) for d in domain.get("image_shape", []))
    where = ("" if not domain.get("real") else
             f"<p id='domain'>Domain: real images {html.escape(str(domain['real']['source']))} "
             f"(N = {domain['real']['n']}), training images {html.escape(str(domain['train']['source']))} "
             f"(N = {domain['train']['n']}), {shape}, K = {domain['num_classes']}.</p>")
    order = domain.get("real_order")
    if order:
        runs = order["stored_order_runs_test"]
        where += (f"<p id='order'>The real images are scored in a seeded random order (seed {order['seed']}); as "
                  f"stored their predicted classes {'come in clusters' if runs['clustered'] else 'are not clustered'} "
                  f"(runs test z = {runs['z']:.1f}).</p>")
    title = f"<h1>isgame audit — classifier {html.escape(report['classifier']['name'])}</h1>"
    if h is None:
        headline = ('<p class="headline" id="headline"><b>Headline.</b> The attacks were not run (skipped on request); '
                    "the probes and the matrix without its attack games follow.</p>")
    else:
        headline = _headline_sentence(h, _noun(report))
    return [
        title,
        headline,
        where,
        '<p id="figures-status">figures not checked (JavaScript off)</p>',
        f"<p>Seed {report['seed']}; the whole audit took {report['seconds']:.1f} s.</p>",
        *_profile(report.get("settings") or {}),
    ]


def _profile(settings: dict) -> list[str]:
    """The fast profile's sizes, stated where a reader compares this report's figures with a full run's."""
    if not settings.get("fast"):
        return []
    return [f"<p id='profile'><b>Fast profile:</b> {settings['n']} samples per section, "
            f"{settings.get('matrix_bootstrap')} bootstrap draws per matrix cell and the bounded sweep in L∞ only, so "
            "thresholds and standard errors are noisier than a full audit's.</p>"]


def _headline_sentence(h: dict, noun: str) -> str:
    from isgame.app.audit import headline_sentence

    numbers = ("" if "numbers" not in h else
               f'<p class="headline" id="three-numbers"><b>In three numbers:</b> '
               f"{html.escape(headline_sentence(h['numbers'], noun).replace('->', '→'))}</p>")
    return numbers + (
        '<p class="headline" id="headline">'
        f"<b>Headline.</b> {html.escape(h['method'])} lifted the Inception Score from <b>{h['noise_is']:.3f}</b> "
        f"to <b id='inflated-is'>{h['inflated_is']:.4f}</b> out of K = {h['num_classes']}, past 0.999 K after "
        f"{h['steps_to_999_of_k']} gradient steps ({h['steps']} until every sample was at its target), "
        f"and {h['seconds']:.2f} s ({h['gradient_evaluations_per_sample']:.2f} forward+backward passes per sample). "
        f"Real held-out {noun} score <b id='real-is'>{h['real_is']:.3f}</b>. Saved as uint8 PNGs the noise still scores "
        f"{h['inflated_is_uint8']:.4f}.</p>"
    )


def _matrix_section(report: dict, folder: Path) -> list[str]:
    matrix = report.get("matrix")
    if not matrix:
        return []
    rows = [[game] + [matrix["cells"][game][m]["value"] for m in matrix["metrics"]] for game in matrix["games"]]
    classes = [[""] + [str(matrix["cells"][g][m].get("verdict")) for m in matrix["metrics"]] for g in matrix["games"]]
    caveat = matrix["fid_sample_size_caveat"]
    test = matrix.get("test", {})
    unfooled = matrix.get("unfooled_metrics", [])
    return [
        "<h2>The robustness matrix</h2>",
        _figure(folder, report["figures"]["matrix_heatmap"],
                "games × metrics, grouped by family, each cell coloured by its verdict (a one-sided test against "
                f"held-out real data, Holm within each column, α = {test.get('alpha', 0.05):g})"),
        _table(["game"] + matrix["metrics"], rows, classes),
        f"<p><b>Metrics that detect every game in their scope:</b> {html.escape(', '.join(unfooled) or 'none')}.</p>",
        *(f"<p>{html.escape(text)}</p>" for text in matrix["paragraphs"].values()),
        f"<p><b>FID's sample-size caveat.</b> {html.escape(caveat['note'])}.</p>",
        _table(["N real samples"] + [str(n) for n in caveat["sizes"]], [["FID"] + caveat["fid"]]),
    ]


def _scores_section(report: dict, folder: Path) -> list[str]:
    return [
        "<h2>Scores of real data and noise</h2>",
        _figure(folder, report["figures"]["source_scores"], "IS, exp(I) and entropies per source"),
        _table(["source", "N", "IS", "± std", "exp(I)", "I bits", "H(y|x) bits"],
               [[s["source"], s["n"], s["is_mean"], s["is_std"], s["improved_is"], s["mutual_information_bits"],
                 s["conditional_entropy_bits"]] for s in report["scores"]]),
    ]


def _inflate_section(report: dict, folder: Path) -> list[str]:
    inflate, figures = report["inflate"], report["figures"]
    if inflate is None:
        return []
    runs = [["newton (default)", inflate["steps"], inflate["steps_to_999_of_k"], inflate["final_is"], inflate["final_is_uint8"],
             inflate["gradient_evaluations_per_sample"]]]
    runs += [[name, r["steps"], r["steps_to_999_of_k"], r["final_is"], r["final_is_uint8"], r["gradient_evaluations_per_sample"]]
             for name, r in inflate["comparison"].items()]
    return [
        "<h2>Inflating the score from noise</h2>",
        _figure(folder, figures["inflate_trace"], "IS and H(y|x) per gradient step"),
        _figure(folder, figures["inflate_noise_grid"], "the starting uniform noise (first 100)"),
        _figure(folder, figures["inflate_grid"], "the same noise after the attack: IS ≈ K, still noise to the eye"),
        _table(["run", "steps", "steps to 0.999 K", "final IS", "uint8 IS", "f+b per sample"], runs),
        *_robust_inflate(inflate.get("robust"), figures, folder),
    ]


def _robust_inflate(robust: dict | None, figures: dict, folder: Path) -> list[str]:
    """The same attack through the adversarially trained classifier, when the audit had one."""
    if not robust or "inflate_robust_grid" not in figures:
        return []
    distances = robust["nearest_training_distance"]
    return [
        f"<h3>Through the adversarially trained {html.escape(robust['robust_classifier'])}</h3>",
        _figure(folder, figures["inflate_robust_grid"], f"the first {robust['n']} noise images inflated through "
                f"{robust['classifier']} (left) and {robust['robust_classifier']} (right)"),
        _table(["", "final score", "steps"] + [f"nearest training image: {k}" for k in distances],
               [["standard", robust["standard_final_is"], robust["standard_steps"], *distances.values()],
                ["robust", robust["robust_final_is"], robust["robust_steps"], *distances.values()]]),
    ]


def _bounded_section(report: dict, folder: Path) -> list[str]:
    if report["bounded"] is None:
        return []
    figures = report["figures"]
    parts = [f"<h2>ε-bounded attacks on real {_noun(report)}: the strongest adversary inside each ball</h2>",
             "<p>Each ε starts from the previous ε's best images and keeps, per split, the best iterate; auto takes "
             "per split the best of the strategies (own-class confidence, split-balanced targets, direct ascent of "
             "the IS) and of the own-class PGD a reviewer would write (20 steps of ε/4), so it never falls with ε "
             "and never loses to that PGD. The older attack, PGD toward cycling targets i mod K, is shown beside it: "
             "half-moved images lose confidence and its IS falls.</p>",
             _figure(folder, figures["bounded_plot"],
                     "IS against ε per strategy, own-class and cycling PGD, ceilings")]
    for sweep in report["bounded"]["sweeps"]:
        thresholds = "; ".join(
            f"+{name}% at " + ("— (not reached on the grid)" if t["epsilon"] is None else
                               f"{t['epsilon'] * 255:.3g}/255 (bracket {t['bracket'][0] * 255:.3g}–"
                               f"{t['bracket'][1] * 255:.3g})") for name, t in sweep["thresholds"].items())
        ceiling = sweep["ceiling"]
        parts.append(f"<p><b>{sweep['norm']}</b>: clean IS {sweep['clean_score']:.4f}; {html.escape(thresholds)}. "
                     f"Ceilings (exact): {ceiling['labels_kept']:.4f} with no label changing class, "
                     f"{ceiling['labels_changed']:.4f} with labels changing.</p>")
        cycling = sweep.get("foolbox_cycling") or [None] * len(sweep["epsilons"])
        own_class = sweep.get("own_class_baseline") or [None] * len(sweep["epsilons"])
        parts.append(_table(["ε × 255", "IS", "won by", "own-class PGD", "cycling PGD", "exp(I)", "labels changed",
                             "mean L2"],
                            [[f"{e['epsilon'] * 255:.3g}", e["inception_score"], e["strategy"],
                              "-" if own is None else own["inception_score"],
                              "-" if cyc is None else cyc["inception_score"],
                              e["exp_mutual_information"], f"{100 * e['labels_changed']:.1f}%", e["mean_l2_distance"]]
                             for e, own, cyc in zip(sweep["epsilons"], own_class, cycling)]))
        key = f"bounded_examples_{sweep['norm']}"
        if key in figures:
            parts.append(_figure(folder, figures[key], f"{sweep['norm']}: clean, attacked and the perturbation "
                                 "magnified, per ε"))
    return parts


def _toy_section(report: dict, folder: Path) -> list[str]:
    return [
        "<h2>The 1-D counter-example</h2>",
        _figure(folder, report["figures"]["toy_densities"], "data, generators and the Bayes classifier"),
        _figure(folder, report["figures"]["toy_scores"], "IS per generator"),
        _table(["generator", "IS (integrated)", "IS (Monte Carlo)", "± s.e."],
               [[g["name"], g["inception_score"], g["inception_score_mc"], g["mc_stderr"]] for g in report["toy"]["generators"]]),
    ]


def _memorization_and_noise_sections(report: dict, folder: Path) -> list[str]:
    probes, figures = report["probes"], report["figures"]
    published = probes["noise"]["published_inception_v3_conditional_entropy_bits"]
    return [
        "<h2>Memorisation</h2>",
        _figure(folder, figures["memorization_plot"], "IS, C_T and authenticity along the KDE bandwidth"),
        _figure(folder, figures["memorization_examples"], "examples: one row per generator"),
        _table(["generator", "IS", "I bits", "C_T", "authenticity", "near-copies"],
               [[g["name"], g["is_mean"], g["mutual_information_bits"], g["ct_statistic"], g["authenticity"],
                 g["near_copy_fraction"]] for g in probes["memorization"]["generators"]]),
        "<h2>Noise baselines</h2>",
        _figure(folder, figures["noise_plot"], "E[H(y|x)] and H(y) against log2 K"),
        _table(["input", "E[H(y|x)] bits", "H(y) bits", "mean top-1"],
               [[r["name"], r["conditional_entropy_bits"], r["marginal_entropy_bits"], r["mean_max_probability"]]
                for r in probes["noise"]["rows"]]),
        f'<p class="published">Published context, not measured here ({html.escape(published["source"])}): '
        + "; ".join(f"{html.escape(k)} {v} bits" for k, v in published["values"].items())
        + f" (log2 1000 = {published['max_entropy_bits']:.2f} bits).</p>",
    ]


def _sensitivity_and_domain_sections(report: dict, folder: Path) -> list[str]:
    probes, figures = report["probes"], report["figures"]
    sensitivity = probes["sensitivity"]
    return [
        "<h2>Sensitivity</h2>",
        _figure(folder, figures["sensitivity_plot"], "splits, sample count, weights and preprocessing"),
        _table(["what", "on", "spread %"],
               [["splits", s["dataset"], s["spread_percent"]] for s in sensitivity["splits"]]
               + [["weights", w["samples"], w["spread_percent"]] for w in sensitivity["weights"]]
               + [["preprocessing", p["samples"], p["spread_percent"]] for p in sensitivity["preprocessing"]]
               + [["JPEG quality", j["samples"], j["spread_percent"]] for j in sensitivity.get("jpeg", [])]),
        "<h2>Domain mismatch</h2>",
        _figure(folder, figures["domain_plot"], "the classifier on images outside its domain"),
        _figure(folder, figures["domain_examples"], "photo crops as the classifier sees them"),
        _table(["images", "IS", "mean top-1", "H(y|x) bits"],
               [[r["name"], r["inception_score"], r["mean_max_probability"], r["conditional_entropy_bits"]]
                for r in probes["domain"]["rows"]]),
    ]


AUDIT_SECTIONS = (_matrix_section, _scores_section, _inflate_section, _bounded_section, _toy_section,
                  _memorization_and_noise_sections, _sensitivity_and_domain_sections)


def render_report_html(report: dict, folder: Path) -> str:
    """The page for a ``report.json`` payload whose figures sit in ``folder``."""
    parts = _headline(report)
    for section in AUDIT_SECTIONS:
        parts.extend(section(report, folder))
    return _page("isgame audit", parts)


def _gameability_rows(gameability: dict | None) -> list[list[object]]:
    """The check's gameability in two rows: the samples' own L∞ ε to reach the claim, the inflate steps from noise."""
    if gameability is None:
        return [["gameability (attacks)", "not run (attack skipped)"]]
    answer, inflate = gameability["samples"], gameability["inflate"]
    epsilon = (answer["skipped"] or "not reached on the grid") if answer["epsilon"] is None \
        else f"{answer['epsilon'] * 255:.3g}/255"
    return [[f"smallest L∞ ε at which the samples reach the claimed {gameability['claimed']:g}", epsilon],
            ["inflate steps taking noise to the claim", "not within the budget" if inflate["steps"] is None
             else inflate["steps"]]]


def render_check_html(check: dict, folder: Path) -> str:
    """The page of one ``isgame check``: both answers with their reasons, the protocol, the context, histogram
    and samples."""
    low, high = check["spread_min"], check["spread_max"]
    protocol = check["protocol"]

    def answer(name: str, yes: bool, reasons: list[str]) -> list[str]:
        return [f'<h2 id="{name}">{name.capitalize()}: {"yes" if yes else "no"}</h2><ul>',
                *(f"<li>{html.escape(reason)}</li>" for reason in reasons), "</ul>"]

    parts = [f"<h1>isgame check — claimed IS {check['claimed']:g} ± {check['claimed_std']:g}</h1>",
             f'<p class="headline" id="verdict"><b>Verdict: {html.escape(check["verdict"])}.</b> '
             f"The claimed protocol ({html.escape(protocol['dialect'])}, {protocol['splits']} splits, "
             f"N = {protocol['n']}) gives {protocol['is_mean']:.4f}; a claim within ± {protocol['tolerance']:.4f} "
             f"of it is reproduced. Classifier {html.escape(check['classifier'])}, K = {check['num_classes']}.</p>",
             '<p id="figures-status">figures not checked (JavaScript off)</p>']
    parts += answer("reproduced", check["reproduced"], check["reproduced_reasons"])
    parts += answer("meaningful", check["meaningful"], check["meaningful_reasons"])
    if check.get("notes"):
        parts.append('<h2 id="notes">Notes</h2><ul>')
        parts += [f"<li>{html.escape(str(note))}</li>" for note in check["notes"]]
        parts.append("</ul>")
    parts.append("<h2>Context: every dialect and preprocessing variant</h2>")
    parts.append(f"<p>They explain a mismatch; they do not decide it. Range [{low:.4f}, {high:.4f}].</p>")
    parts.append(_table(["variant", "IS"], [[name, value] for name, value in check["recomputed"].items()]))
    baseline, ceiling = check["noise_baseline"], check["gaming_ceiling"]
    parts.append("<h2>Baselines</h2>")
    parts.append(_table(["quantity", "value"], [
        ["E[H(y|x)] of the samples (bits)", baseline["samples_bits"]],
        ["E[H(y|x)] of uniform noise (bits)", baseline["uniform_noise_bits"]],
        ["E[H(y|x)] of real reference images (bits)", "-" if baseline["reference_bits"] is None else baseline["reference_bits"]],
        ["gaming ceiling: IS of noise after the inflate attack",
         "not run (attack skipped)" if ceiling is None else ceiling["inflated_is"]],
        *_gameability_rows(check.get("gameability")),
        ["samples per split", check["sample_count"]["per_split"]],
        ["fraction nearer noise than real", "-" if check["images_vs_noise"]["fraction_nearer_noise_than_real"] is None
         else check["images_vs_noise"]["fraction_nearer_noise_than_real"]],
    ]))
    parts.append(_figure(folder, check["files"]["histogram"], "predicted-class histogram"))
    rows = check.get("example_rows")
    shown = (f"the first {min(50, check['n'])} samples" if rows is None else
             f"{len(rows)} of the {check['n']} samples, a seeded random draw (seed "
             f"{check.get('provenance', {}).get('seed', '?')}) in file order"
             if len(rows) < check["n"] else f"all {check['n']} samples")
    parts.append(_figure(folder, check["files"]["samples"], shown))
    return _page("isgame check", parts)
