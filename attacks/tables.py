"""Rich tables of attack results for the terminal."""

from __future__ import annotations

from rich import box
from rich.table import Table

from attacks.commands import BoundedReport, InflateReport, ToyReport


def _fmt_eps(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.4f} ({value * 255:.0f}/255)"


def inflate_table(report: InflateReport) -> Table:
    """Initial and final IS per run, against K and the real held-out IS."""
    r = report.result
    table = Table(title=f"inflate: n = {r.n} {report.noise} noise, K = {r.num_classes}, real held-out IS = {report.real_is:.4f}",
                  box=box.SIMPLE_HEAD)
    for column in ("run", "steps", "to .999K", "seconds", "f+b/n", "start IS", "final IS", "IS / K", "uint8 IS", "H(y|x) bits"):
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
    for name, run in {r.optimizer: r, **report.comparison}.items():
        reached = run.steps_to_fraction_of_k(0.999)
        table.add_row(name, str(run.steps), "-" if reached is None else str(reached), f"{run.seconds:.2f}",
                      f"{run.gradient_evaluations_per_sample:.2f}",
                      f"{run.initial_is:.4f}", f"{run.final_is:.4f}", f"{run.final_is / run.num_classes:.5f}",
                      f"{run.final_is_uint8:.4f}", f"{run.final_conditional_entropy_bits:.2e}")
    return table


def bounded_table(report: BoundedReport) -> Table:
    """IS, H(y|x) and success per ε and norm; the ε thresholds in the caption."""
    table = Table(title=f"ε-bounded targeted PGD (foolbox) on {report.source}", box=box.SIMPLE_HEAD)
    for column in ("norm", "ε", "ε × 255", "IS", "H(y|x) bits", "success", "max distance"):
        table.add_column(column, justify="right", no_wrap=True)
    captions = []
    for sweep in report.sweeps:
        for s in sweep.scores:
            table.add_row(sweep.norm, f"{s.epsilon:.4f}", f"{s.epsilon * 255:.0f}", f"{s.inception_score:.4f}",
                          f"{s.conditional_entropy_bits:.4f}", f"{100 * s.success_rate:.1f}%", f"{s.max_distance:.4f}")
        captions.append(f"{sweep.norm}: real IS {sweep.real_is:.4f}; +10% at ε = {_fmt_eps(sweep.epsilon_for_10_percent)}; "
                        f"99% of K at ε = {_fmt_eps(sweep.epsilon_for_99_percent_of_k)}")
    table.caption = "\n".join(captions)
    return table


def toy_table(report: ToyReport) -> Table:
    """IS per generator, integrated and Monte Carlo."""
    table = Table(title=f"1-D counter-example (K = 2), Monte Carlo n = {report.result.n}", box=box.SIMPLE_HEAD)
    for column in ("generator", "IS (integrated)", "IS (Monte Carlo)", "± s.e.", "p(y=1)", "E[H(y|x)] nats"):
        table.add_column(column, justify="left" if column == "generator" else "right", no_wrap=True)
    for g in report.result.generators:
        table.add_row(g.name, f"{g.inception_score:.6f}", f"{g.inception_score_mc:.6f}", f"{g.mc_stderr:.2e}",
                      f"{g.marginal_class1:.4f}", f"{g.conditional_entropy_nats:.4f}")
    return table
