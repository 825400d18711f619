"""The audit's ``report.html``: one self-contained page (figures embedded as data URIs) that a
reviewer can open offline. Its first screen is the answer card: how easily IS is gamed here, in three numbers,
and which metrics resisted every game in their scope; the sections follow, the matrix as a heatmap table.

Every figure is shown at a fixed CSS width (:func:`isgame.app.figures.figure_layout`): a saved figure at half
its pixel width, so its smallest text, 7 pt at 192 dpi, is 9.3 CSS px.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 1em auto; padding: 0 1em; color: #222;
       line-height: 1.45; }
h1 { font-size: 1.45em; margin: .3em 0 .4em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .8em 0; }
td, th { border: 1px solid #ddd; padding: .25em .55em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.card { background: #fff8ec; border: 1px solid #f0c070; border-left: 6px solid #f0a030; border-radius: 4px;
        padding: .6em 1.1em .7em; }
.card h2 { border: none; margin: .2em 0 .3em; font-size: 1.15em; }
.card ul { margin: .2em 0 .5em; padding-left: 1.3em; } .card li { margin: .25em 0; }
.card p { margin: .35em 0; } .card .figure { font-size: 1.1em; font-weight: 700; }
.card nav { margin-top: .5em; font-size: .92em; } .card nav a { margin-right: .9em; white-space: nowrap; }
.meta { color: #555; font-size: .9em; } .nowrap { white-space: nowrap; }
.headline { background: #fff4e5; border-left: 4px solid #f0a030; padding: .8em 1em; }
.published { color: #666; font-style: italic; }
figure { margin: .8em 0; max-width: 100%; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
img.grid { image-rendering: pixelated; }
.matrix-box { overflow: auto; max-width: 100%; max-height: 85vh; border: 1px solid #ccc; margin: .8em 0; }
table.matrix { margin: 0; font-size: .8em; font-variant-numeric: tabular-nums; }
table.matrix th, table.matrix td { white-space: nowrap; }
table.matrix thead th { position: sticky; background: #f7f7f7; z-index: 2; height: 2.2em; box-sizing: border-box; }
table.matrix thead tr:first-child th { top: 0; }
table.matrix thead tr:nth-child(2) th { top: 2.2em; }
table.matrix tbody th { position: sticky; left: 0; background: #fafafa; z-index: 1; text-align: left;
                        font-weight: normal; }
table.matrix thead th.corner { left: 0; z-index: 3; text-align: left; vertical-align: bottom; }
table.matrix th.family { text-align: center; border-left: 2px solid #666; }
table.matrix .first { border-left: 2px solid #666; }
.legend span { display: inline-block; padding: .1em .6em; margin: 0 .4em .3em 0; border: 1px solid #bbb;
               font-size: .9em; }
details { margin: .3em 0; } summary { cursor: pointer; }
.missed { background: #fb6a4a; } .detected { background: #9ecae1; } .false_alarm { background: #fdae6b; }
.no_alarm { background: #c7e9c0; } .not_applicable { background: #f0f0f0; color: #777; }
.reference { background: #fff; } .unmeasured { background: #d9d9d9; color: #555; }
.undecided { background: #fff7bc; }
"""

#: each verdict's name in the legend and the cells' titles
VERDICT_NAMES = {"missed": "missed", "false_alarm": "false alarm", "detected": "detected", "no_alarm": "no alarm",
                 "not_applicable": "not applicable", "undecided": "undecided (too few draws)",
                 "reference": "reference row", None: "not measured"}


def _figure(folder: Path, filename: str, caption: str) -> str:
    """The PNG embedded at its fixed displayed width (:func:`figure_layout`), so its text keeps its size."""
    from isgame.app.figures import figure_layout

    path = folder / filename
    layout = figure_layout(path)
    width = round(layout["displayed_width"])
    css = "" if layout["min_text_px"] is not None else ' class="grid"'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img{css} alt="{html.escape(caption)}" width="{width}" src="data:image/png;base64,{data}">'
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
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{chr(10).join(parts)}</body></html>")


def _noun(report: dict) -> str:
    """What the domain's real images are called: "digits" on the built-in domain, "real images" on any other."""
    return report.get("domain", {}).get("noun", "real images")


#: the report's sections, in order: the id each is linked by from the answer card, and its title there
SECTION_LINKS = {"matrix": "robustness matrix", "leaderboard": "ε to fool each metric", "scores": "scores", "inflate": "inflating noise",
                 "bounded": "ε-bounded attacks", "perturbations": "what the attack changes", "toy": "1-D example",
                 "memorisation": "memorisation", "noise": "noise baselines", "sensitivity": "sensitivity",
                 "domain-mismatch": "domain mismatch"}


def _headline(report: dict) -> list[str]:
    """The title, then the answer card, then the setting in small print."""
    domain = report.get("domain") or {}
    shape = "x".join(str(d) for d in domain.get("image_shape", []))
    where = ("" if not domain.get("real") else
             f"<p class='meta' id='domain'>Domain: real images {html.escape(str(domain['real']['source']))} "
             f"(N = {domain['real']['n']}), training images {html.escape(str(domain['train']['source']))} "
             f"(N = {domain['train']['n']}), {shape}, K = {domain['num_classes']}.</p>")
    order = domain.get("real_order")
    if order:
        runs = order["stored_order_runs_test"]
        where += (f"<p class='meta' id='order'>The real images are scored in a seeded random order (seed "
                  f"{order['seed']}); as stored their predicted classes "
                  f"{'come in clusters' if runs['clustered'] else 'are not clustered'} "
                  f"(runs test z = {runs['z']:.1f}).</p>")
    return [
        f"<h1>isgame audit — classifier {html.escape(report['classifier']['name'])}</h1>",
        _answer_card(report),
        where,
        f"<p class='meta'>Seed {report['seed']}; the whole audit took {report['seconds']:.1f} s.</p>",
        *_profile(report.get("settings") or {}),
    ]


def _answer_card(report: dict) -> str:
    """The first screen: how easily IS is gamed here (the headline's three numbers, a sentence each), which metrics
    resisted every game in their scope and which did not, and links to the sections."""
    h, noun = report["headline"], _noun(report)
    numbers = (h or {}).get("numbers") or {}
    if h is None:
        items = ["The attacks were not run (skipped on request): no figure for noise or for the ε-ball; the probes "
                 "and the matrix without its attack games follow."]
        replay = report["scores"][1]["is_mean"], report["scores"][0]["is_mean"]
        numbers = {"training_replay": {"train_is": replay[0], "held_out_is": replay[1],
                                       "percent_above_held_out": 100 * (replay[0] / replay[1] - 1)}}
    else:
        items = []
    if "noise_to_k" in numbers:
        k = numbers["noise_to_k"]
        steps = ("<span class='figure'>not within the step budget</span>" if k["steps"] is None else
                 f"<span class='figure'>{k['steps']} gradient step{'' if k['steps'] == 1 else 's'}</span>")
        noise = html.escape(str((report.get("inflate") or {}).get("noise", "")))
        items.append(f"Noise reaches the maximum: {steps} take {noise} noise from IS {k['from_is']:.2f} to "
                     f"<b id='inflated-is'>{k['to_is']:.3f}</b> of K = {k['num_classes']} (0.999 K), above the "
                     f"<b id='real-is'>{h['real_is']:.3f}</b> of real held-out {html.escape(noun)}; the whole "
                     f"{h['steps']}-step run took {h['seconds']:.2f} s.")
    if "epsilon_for_5_percent" in numbers:
        e = numbers["epsilon_for_5_percent"]
        lift = f"from {e['clean_is']:.3f} to {e['target_is']:.3f}"
        if e["epsilon"] is None:
            items.append(f"Real {html.escape(noun)} +5%: <span class='figure'>not within L∞ ε ≤ "
                         f"{e['largest_epsilon'] * 255:.3g}/255</span> (IS {lift} was not reached).")
        else:
            items.append(f"Real {html.escape(noun)} +5%: a change of at most <span class='figure'>L∞ ε = "
                         f"{e['epsilon'] * 255:.3g}/255</span> per pixel lifts the IS of held-out "
                         f"{html.escape(noun)} {lift} (bracket {e['bracket'][0] * 255:.3g}–"
                         f"{e['bracket'][1] * 255:.3g}/255).")
    r = numbers["training_replay"]
    items.append(f"Copying pays: replayed training {html.escape(noun)} score <span class='figure'>"
                 f"{r['percent_above_held_out']:+.1f}%</span> against held-out ones ({r['train_is']:.3f} against "
                 f"{r['held_out_is']:.3f}).")
    links = " ".join(f"<a href='#{anchor}'>{html.escape(title)}</a>" for anchor, title in SECTION_LINKS.items()
                     if anchor not in ("inflate", "bounded", "perturbations", "leaderboard")
                     or report.get("inflate") is not None)
    return ("<section class='card' id='answer'><h2>How easily the Inception Score is gamed here</h2>"
            f"<ul>{''.join(f'<li>{item}</li>' for item in items)}</ul>{_metrics_verdict(report.get('matrix'))}"
            f"{_leaderboard_line(report.get('robustness'))}"
            f"<nav>Sections: {links}</nav></section>")


def _leaderboard_line(board: dict | None) -> str:
    """The leaderboard in one line: per metric attacked white-box, the ε that fools it on honest KDE samples."""
    if not board:
        return ""
    source = board["sources"][0]
    entries = [e for e in board["entries"] if e["source"] == source and e["attack"] == "white-box"
               and e["status"] != "not applicable"]
    ranked = sorted(entries, key=lambda e: math.inf if e["epsilon_to_fool"] is None else e["epsilon_to_fool"])
    return (f"<p><b>ε that fools each metric</b> (white-box attack on {html.escape(source)} samples, "
            f"<a href='#leaderboard'>leaderboard</a>): "
            + ", ".join(f"<span class='nowrap'>{html.escape(e['metric'])} {html.escape(e['epsilon_to_fool_label'])}"
                        "</span>" for e in ranked) + ".</p>")


def _leaderboard_section(report: dict, folder: Path) -> list[str]:
    board = report.get("robustness")
    if not board:
        return []
    grid = ", ".join(f"{e:.3g}" for e in board["epsilons_255"])
    rows = [[e["metric"], e["source"], e["epsilon_to_fool_label"], e["attack"],
             _number(e["value_clean"]), _number(e["value_at_max_epsilon"]), _number(e["held_out_real"])]
            for e in [*board["entries"], *board["transfer"]] if e["status"] != "not applicable"]
    return [
        "<h2 id='leaderboard'>The ε that fools each metric</h2>",
        f"<p>Each metric with a differentiable form is attacked white-box: L∞ PGD on its own loss ({board['n']} "
        f"images per set, {board['steps_per_epsilon']} steps per ε, grid {html.escape(grid)} /255, each ε starting "
        "from the previous ε's best set), on degraded images (honest KDE samples, uniform noise). At each ε the "
        "matrix's one-sided test judges the attacked set against held-out real data; the ε to fool is the first "
        f"whose set it no longer flags, refined by {board['bisection_steps']} bisection step(s). '&gt; ε_max' means "
        "not fooled within the grid, not robust. The metrics without a loss are judged on the FID attack's images "
        "(transfer); the FID attack is also judged on FID-b and the wavelet distance. A reduced run: "
        "<code>isgame robustness</code> gives the full one.</p>",
        _figure(folder, report["figures"]["robustness_figure"],
                "each metric's value against ε, 0 = the unattacked degraded set, 1 = held-out real data"),
        _table(["metric", "source", "ε to fool", "attack", "at ε = 0", "at ε max", "held-out real"], rows),
    ]


def _number(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _metrics_verdict(matrix: dict | None) -> str:
    """Which metrics resisted every game in their scope, and which missed some (how many of those in scope)."""
    if not matrix:
        return ""
    unfooled = matrix.get("unfooled_metrics", [])
    confusion = matrix["confusion"]
    fooled = [(m, c["missed"], c["missed"] + c["detected"]) for m, c in confusion.items() if c["missed"]]
    unsure = [m for m in matrix["metrics"] if m not in unfooled and not confusion[m]["missed"]]
    alarms = [m for m, c in confusion.items() if c["false_alarm"]]
    parts = [f"<p><b>Resisted every game in their scope:</b> {html.escape(', '.join(unfooled) or 'none')}.</p>",
             "<p><b>Fooled</b> (games missed of those in scope): "
             + (", ".join(f"<span class='nowrap'>{html.escape(m)} {missed}/{scope}</span>"
                          for m, missed, scope in fooled) or "none") + ".</p>"]
    if unsure:
        parts.append("<p><b>Missed none, but not tested on every game in their scope:</b> "
                     f"{html.escape(', '.join(unsure))}.</p>")
    if alarms:
        parts.append(f"<p><b>False alarms</b> on real data in another order: {html.escape(', '.join(alarms))}.</p>")
    return "".join(parts)


def _profile(settings: dict) -> list[str]:
    """The fast profile's sizes, stated where a reader compares this report's figures with a full run's."""
    if not settings.get("fast"):
        return []
    return [f"<p id='profile'><b>Fast profile:</b> {settings['n']} samples per section, "
            f"{settings.get('matrix_bootstrap')} bootstrap draws per matrix cell and the bounded sweep in L∞ only, so "
            "thresholds and standard errors are noisier than a full audit's.</p>"]


def _headline_sentence(h: dict, noun: str) -> str:
    """The inflate attack in one paragraph (the answer card gives its figure)."""
    return (
        '<p class="headline" id="headline">'
        f"{html.escape(h['method'][0].upper() + h['method'][1:])} lifted the Inception Score from "
        f"<b>{h['noise_is']:.3f}</b> to <b>{h['inflated_is']:.4f}</b> out of K = {h['num_classes']}, past 0.999 K after "
        f"{h['steps_to_999_of_k']} gradient steps ({h['steps']} until every sample was at its target), "
        f"and {h['seconds']:.2f} s ({h['gradient_evaluations_per_sample']:.2f} forward+backward passes per sample). "
        f"Real held-out {noun} score <b>{h['real_is']:.3f}</b>. Saved as uint8 PNGs the noise still scores "
        f"{h['inflated_is_uint8']:.4f}.</p>"
    )


def _matrix_section(report: dict, folder: Path) -> list[str]:
    matrix = report.get("matrix")
    if not matrix:
        return []
    caveat = matrix["fid_sample_size_caveat"]
    test = matrix.get("test", {})
    unfooled = matrix.get("unfooled_metrics", [])
    return [
        "<h2 id='matrix'>The robustness matrix</h2>",
        f"<p>Each game (a row) against each metric (a column), against held-out real data; each cell coloured by its "
        f"verdict, a one-sided test with Holm's correction within each column, α = {test.get('alpha', 0.05):g}. "
        "Hover a cell for its p-value and the reference value; ✗ marks a miss, ! a false alarm.</p>",
        _verdict_legend(),
        _matrix_table(matrix),
        f"<p><b>Metrics that detect every game in their scope:</b> {html.escape(', '.join(unfooled) or 'none')}.</p>",
        "<h3>Per metric</h3>",
        *(f"<details><summary>{html.escape(_metric_summary(metric, matrix['confusion'][metric]))}</summary>"
          f"<p>{html.escape(text)}</p></details>" for metric, text in matrix["paragraphs"].items()),
        _figure(folder, report["figures"]["matrix_heatmap"],
                "the same matrix as a figure (matrix.png), rows and columns grouped by family"),
        f"<p><b>FID's sample-size caveat.</b> {html.escape(caveat['note'])}.</p>",
        _table(["N real samples"] + [str(n) for n in caveat["sizes"]], [["FID"] + caveat["fid"]]),
    ]


def _metric_summary(metric: str, counts: dict) -> str:
    scope = counts["detected"] + counts["missed"]
    alarms = f", {counts['false_alarm']} false alarm{'s' if counts['false_alarm'] != 1 else ''}" \
        if counts["false_alarm"] else ""
    return f"{metric}: detects {counts['detected']} of {scope} games in its scope{alarms}"


def _verdict_legend() -> str:
    return ("<p class='legend'>" + "".join(f"<span class='{verdict}'>{name}</span>" for verdict, name in
                                          VERDICT_NAMES.items() if verdict not in ("reference", None))
            + "<span class='unmeasured'>not measured</span></p>")


def _matrix_table(matrix: dict) -> str:
    """The matrix as an HTML table in its own sideways-scrolling box: a header row of metric families over the
    metrics, the games' column and the header sticky; each cell's value, its verdict as a class and colour, and
    the p-value and reference value in its title."""
    metrics, families = matrix["metrics"], matrix.get("families", {})
    groups = []  # (family, number of consecutive metrics)
    for metric in metrics:
        family = families.get(metric, "")
        if groups and groups[-1][0] == family:
            groups[-1][1] += 1
        else:
            groups.append([family, 1])
    firsts = {sum(n for _, n in groups[:i]) for i in range(len(groups))}
    arrows = {True: "↑", False: "↓", None: "→0"}
    FIRST = " class='first'"  # the first metric of a family: a heavier line before it
    better = matrix.get("higher_is_better", {})
    head = ("<thead><tr><th class='corner' rowspan='2'>game</th>"
            + "".join(f"<th class='family' colspan='{n}'>{html.escape(family)}</th>" for family, n in groups)
            + "</tr><tr>" + "".join(f"<th{FIRST if j in firsts else ''}>{html.escape(m)} "
                                    f"{arrows.get(better.get(m), '')}</th>" for j, m in enumerate(metrics))
            + "</tr></thead>")
    rows = []
    for game in matrix["games"]:
        family = matrix.get("game_families", {}).get(game, "")
        cells = []
        for j, metric in enumerate(metrics):
            cell = matrix["cells"][game][metric]
            verdict = cell.get("verdict")
            css = {None: "unmeasured"}.get(verdict, verdict)
            css += " first" if j in firsts else ""
            cells.append(f"<td class='{css}' title='{html.escape(_cell_title(game, metric, cell), quote=True)}'>"
                         f"{html.escape(_cell_text(cell))}</td>")
        rows.append(f"<tr><th title='{html.escape(family, quote=True)}'>{html.escape(game)}</th>{''.join(cells)}</tr>")
    return f"<div class='matrix-box'><table class='matrix'>{head}<tbody>{''.join(rows)}</tbody></table></div>"


def _number(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and value != value) else f"{value:.3g}"


def _cell_text(cell: dict) -> str:
    marks = {"missed": " ✗", "false_alarm": " !"}
    return _number(cell.get("value")) + ("" if cell.get("value") is None else marks.get(cell.get("verdict"), ""))


def _cell_title(game: str, metric: str, cell: dict) -> str:
    verdict = VERDICT_NAMES.get(cell.get("verdict"), str(cell.get("verdict")))
    parts = [f"{game} × {metric}: {verdict}", f"value {_number(cell.get('value'))}",
             f"reference {_number(cell.get('reference'))}"]
    if cell.get("p_value") is not None:
        parts.append(f"p = {_number(cell['p_value'])}")
    if cell.get("p_adjusted") is not None:
        parts.append(f"Holm p = {_number(cell['p_adjusted'])}")
    return "; ".join(parts)


def _scores_section(report: dict, folder: Path) -> list[str]:
    return [
        "<h2 id='scores'>Scores of real data and noise</h2>",
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
        "<h2 id='inflate'>Inflating the score from noise</h2>",
        _headline_sentence(report["headline"], _noun(report)),
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
    parts = [f"<h2 id='bounded'>ε-bounded attacks on real {_noun(report)}: the strongest adversary inside each ball</h2>",
             "<p>Each ε starts from the previous ε's best images and keeps, per split, the best iterate; auto takes "
             "per split the best of the strategies (own-class confidence, split-balanced targets, direct ascent of "
             "the IS) and of the own-class PGD a reviewer would write (20 steps of ε/4), so it never falls with ε "
             "and never loses to that PGD. The older attack, PGD toward cycling targets i mod K, is shown beside it (L∞): "
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
                     f"Closed forms: {ceiling['labels_kept']:.4f} with every image certain of its current class (the "
                     "own-class push's limit, not a bound: predictions that keep their class but share mass can "
                     f"score a little above it); {ceiling['labels_changed']:.4f}, the most any predictions can "
                     "score, with labels changing.</p>")
        cycling = sweep.get("foolbox_cycling") or [None] * len(sweep["epsilons"])
        own_class = sweep.get("own_class_baseline") or [None] * len(sweep["epsilons"])
        parts.append(_table(["ε × 255", "IS", "won by", "own-class PGD", "cycling PGD", "exp(I)", "labels changed",
                             "mean L2"],
                            [[f"{e['epsilon'] * 255:.3g}", e["inception_score"], e["strategy"],
                              "-" if own is None else own["inception_score"],
                              "-" if cyc is None else cyc["inception_score"],
                              e["exp_mutual_information"], f"{100 * e['labels_changed']:.1f}%", e["mean_l2_distance"]]
                             for e, own, cyc in zip(sweep["epsilons"], own_class, cycling)]))
    return parts


def _perturbation_section(report: dict, folder: Path) -> list[str]:
    """The bounded attack's images: clean, attacked and the perturbation magnified, per ε and norm."""
    if report["bounded"] is None:
        return []
    figures = report["figures"]
    grids = [_figure(folder, figures[f"bounded_examples_{sweep['norm']}"], f"{sweep['norm']}: clean, attacked "
                     "and the perturbation magnified to the ball (blue negative, red positive), per ε")
             for sweep in report["bounded"]["sweeps"] if f"bounded_examples_{sweep['norm']}" in figures]
    if not grids:
        return []
    return ["<h2 id='perturbations'>What the bounded attack changes</h2>",
            f"<p>The first held-out {_noun(report)} before and after the attack at each ε: the score rises while "
            "the images barely change.</p>", *grids]


def _toy_section(report: dict, folder: Path) -> list[str]:
    return [
        "<h2 id='toy'>The 1-D counter-example</h2>",
        _figure(folder, report["figures"]["toy_densities"], "data, generators and the Bayes classifier"),
        _figure(folder, report["figures"]["toy_scores"], "IS per generator"),
        _table(["generator", "IS (integrated)", "IS (Monte Carlo)", "± s.e."],
               [[g["name"], g["inception_score"], g["inception_score_mc"], g["mc_stderr"]] for g in report["toy"]["generators"]]),
    ]


def _memorization_and_noise_sections(report: dict, folder: Path) -> list[str]:
    probes, figures = report["probes"], report["figures"]
    published = probes["noise"]["published_inception_v3_conditional_entropy_bits"]
    return [
        "<h2 id='memorisation'>Memorisation</h2>",
        _figure(folder, figures["memorization_plot"], "IS, C_T and authenticity along the KDE bandwidth"),
        _figure(folder, figures["memorization_examples"], "examples: one row per generator"),
        _table(["generator", "IS", "I bits", "C_T", "authenticity", "near-copies"],
               [[g["name"], g["is_mean"], g["mutual_information_bits"], g["ct_statistic"], g["authenticity"],
                 g["near_copy_fraction"]] for g in probes["memorization"]["generators"]]),
        "<h2 id='noise'>Noise baselines</h2>",
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
        "<h2 id='sensitivity'>Sensitivity</h2>",
        _figure(folder, figures["sensitivity_plot"], "splits, sample count, weights and preprocessing"),
        _table(["what", "on", "spread %"],
               [["splits", s["dataset"], s["spread_percent"]] for s in sensitivity["splits"]]
               + [["weights", w["samples"], w["spread_percent"]] for w in sensitivity["weights"]]
               + [["preprocessing", p["samples"], p["spread_percent"]] for p in sensitivity["preprocessing"]]
               + [["JPEG quality", j["samples"], j["spread_percent"]] for j in sensitivity.get("jpeg", [])]),
        "<h2 id='domain-mismatch'>Domain mismatch</h2>",
        _figure(folder, figures["domain_plot"], "the classifier on images outside its domain"),
        _figure(folder, figures["domain_examples"], "photo crops as the classifier sees them"),
        _table(["images", "IS", "mean top-1", "H(y|x) bits"],
               [[r["name"], r["inception_score"], r["mean_max_probability"], r["conditional_entropy_bits"]]
                for r in probes["domain"]["rows"]]),
    ]


AUDIT_SECTIONS = (_matrix_section, _leaderboard_section, _scores_section, _inflate_section, _bounded_section, _perturbation_section,
                  _toy_section,
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
             f"of it is reproduced. Classifier {html.escape(check['classifier'])}, K = {check['num_classes']}.</p>"]
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
