"""The README's benchmark section is generated from run_all's JSON, never typed by hand (issue 16).

``benchmarks/quick_results.json`` is the saved output of the ``run_all --quick`` run the README quotes; the
section between the markers must be exactly what ``run_all.readme_section`` makes of it, so a hand edit of either
side, or a rerun that updated one and not the other, fails here.
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
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(run_all.START) : readme.index(run_all.END) + len(run_all.END)]
    assert section == run_all.readme_section(saved)
    assert set(saved["benchmarks"]) | set(saved["failed"]) == set(run_all.BENCHMARKS)


def test_a_section_lists_every_headline_its_targets_and_verdicts_and_every_failure():
    lines = collected(
        a={"headline": "A ran at 3 rows/s.", "targets": {"rows_min": 5}, "meets_targets": False,
           "machine": {"cpu": "Test CPU", "threads": 2, "torch": "9.9"}},
        b={"headline": "B is fine.", "met": {"memory": True}})
    lines["failed"] = {"c": "Traceback ...\nRuntimeError: c broke\n"}
    section = run_all.readme_section(lines)
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
    assert readme.read_text() == f"# Title\n\nbefore\n{run_all.readme_section(lines)}\nafter\n"
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="markers"):
        run_all.write_readme(plain, lines)
    assert plain.read_text() == "no markers here\n"
