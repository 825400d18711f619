"""The benchmark section of docs/benchmarks.md is generated from run_all's JSON, never typed by hand.

``benchmarks/readme_results.json`` is the saved output of the ``run_all --quick`` run the page quotes; the
section between the markers must be exactly what ``run_all.benchmark_section`` makes of it, so a hand edit of either
side, or a rerun that updated one and not the other, fails here. The section moved from the README to
docs/benchmarks.md (``--docs``); ``--readme`` still writes wherever the markers are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import run_all  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


def collected(**benchmarks: dict) -> dict:
    return {"quick": True, "total_seconds": 12.4, "seconds": {name: 1.0 for name in benchmarks},
            "benchmarks": benchmarks, "failed": {}}


def test_the_readme_section_is_the_one_generated_from_the_saved_results():
    saved = json.loads((ROOT / run_all.SAVED_RESULTS).read_text())
    page = (ROOT / run_all.DOCS_PAGE).read_text()
    section = page[page.index(run_all.START) : page.index(run_all.END) + len(run_all.END)]
    assert section == run_all.benchmark_section(saved)
    assert set(saved["benchmarks"]) | set(saved["failed"]) == set(run_all.BENCHMARKS)


def test_the_section_lives_in_the_docs_page_and_not_in_the_readme():
    assert run_all.has_markers(ROOT / run_all.DOCS_PAGE)
    readme = (ROOT / "README.md").read_text()
    assert run_all.START not in readme and run_all.END not in readme
    assert f"--docs {run_all.DOCS_PAGE}" in run_all.benchmark_section(collected(a={"headline": "A."}))


def test_a_section_lists_every_headline_its_targets_and_verdicts_and_every_failure():
    lines = collected(
        a={"headline": "A ran at 3 rows/s.", "targets": {"rows_min": 5}, "meets_targets": False,
           "machine": {"cpu": "Test CPU", "threads": 2, "torch": "9.9"}},
        b={"headline": "B is fine.", "met": {"memory": True}})
    lines["failed"] = {"c": "Traceback ...\nRuntimeError: c broke\n"}
    section = run_all.benchmark_section(lines)
    assert section.startswith(run_all.START) and section.endswith(run_all.END)
    assert "12 s in all, on Test CPU, 2 threads, torch 9.9" in section
    assert '- `python benchmarks/a.py --quick`: A ran at 3 rows/s. Targets {"rows_min": 5}; meets targets: no.' in section
    assert "- `python benchmarks/b.py --quick`: B is fine.\n" in section  # no targets: no verdict line
    assert "- `python benchmarks/c.py --quick`: failed in that run (RuntimeError: c broke)." in section


def test_write_readme_replaces_only_the_section_and_refuses_a_file_without_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{run_all.START}\nold figures\n{run_all.END}\nafter\n")
    lines = collected(a={"headline": "New figures."})
    run_all.write_readme(readme, lines)
    assert readme.read_text() == f"# Title\n\nbefore\n{run_all.benchmark_section(lines)}\nafter\n"
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="markers"):
        run_all.write_readme(plain, lines)
    assert plain.read_text() == "no markers here\n"


def test_readme_option_writes_wherever_the_markers_are(tmp_path, monkeypatch):
    """--docs names the page; --readme, its older name, writes into its file's markers, else the docs page's."""
    docs = tmp_path / "docs" / "benchmarks.md"
    docs.parent.mkdir()
    docs.write_text(f"# Benchmarks\n{run_all.START}\nold\n{run_all.END}\n")
    readme = tmp_path / "README.md"
    readme.write_text("# Title, no markers\n")
    monkeypatch.setattr(run_all, "HERE", tmp_path / "benchmarks")
    assert run_all.section_target(None, docs) == docs
    assert run_all.section_target(readme, None) == docs  # the README has no markers: the section moved
    marked = tmp_path / "OTHER.md"
    marked.write_text(f"{run_all.START}\n{run_all.END}\n")
    assert run_all.section_target(marked, None) == marked
    assert run_all.section_target(None, None) is None
    lines = collected(a={"headline": "Moved."})
    run_all.write_section(run_all.section_target(readme, None), lines)
    assert docs.read_text() == f"# Benchmarks\n{run_all.benchmark_section(lines)}\n"
    assert readme.read_text() == "# Title, no markers\n"
