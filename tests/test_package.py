"""The installed package: one name in site-packages, a public API that works from any folder, and the
README's Python examples, run as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import isgame

REPOSITORY = Path(isgame.__file__).resolve().parent
# What a build copies: the tracked layout, without environments, caches or run outputs.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "outputs", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".hypothesis")


def test_wheel_holds_only_the_isgame_package(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPOSITORY, source, ignore=NOT_SOURCE)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("isgame-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/", 1)[0] for name in names} == {"isgame", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for module in ("isgame/__init__.py", "isgame/cli.py", "isgame/scoring/metrics/inception_score.py",
                   "isgame/attacks/inflate.py", "isgame/probes/claim.py", "isgame/app/audit.py",
                   "isgame/scoring/weights/digits.safetensors"):
        assert module in names, module
    assert not [name for name in names if name.startswith(("isgame/tests/", "isgame/benchmarks/", "isgame/outputs/"))]
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert re.search(r"^isgame = isgame\.cli:main$", entry_points, re.MULTILINE)


def test_the_editable_install_maps_one_name():
    import isgame.app
    import isgame.attacks
    import isgame.cli
    import isgame.probes
    import isgame.scoring

    for package in (isgame.scoring, isgame.attacks, isgame.probes, isgame.app):
        assert Path(package.__file__).resolve().parent.parent == REPOSITORY
    assert Path(isgame.cli.__file__).resolve() == REPOSITORY / "cli.py"


def test_isgame_computes_is_and_fid_from_a_folder_with_shadowing_modules(tmp_path):
    for name in ("scoring.py", "cli.py", "attacks.py", "probes.py"):
        (tmp_path / name).write_text("raise SystemExit('the user\\'s own module was imported')\n")
    program = textwrap.dedent("""
        import torch, isgame
        logits = 3 * torch.randn(200, 10, generator=torch.Generator().manual_seed(1))
        features = torch.randn(300, 8, generator=torch.Generator().manual_seed(2))
        print(isgame.inception_score(logits, splits=5).is_mean)
        print(isgame.frechet_distance(features[:150], features[150:]))
        print(isgame.scoring.__name__, isgame.cli.__name__)
    """)
    run = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    is_mean, fid, modules = run.stdout.splitlines()
    assert 1.0 < float(is_mean) < 10.0 and float(fid) > 0.0
    assert modules == "isgame.scoring isgame.cli"


def test_scoring_a_file_loads_neither_scikit_learn_nor_foolbox(tmp_path):
    """`isgame score FILE` imports what scoring needs: scikit-learn alone added 1.6-1.8 s and about 60 MiB of RSS
    to every call when the tables module imported every command for its annotations."""
    import numpy as np

    logits = tmp_path / "logits.npy"
    np.save(logits, np.random.default_rng(0).normal(size=(50, 10)).astype(np.float32))
    program = textwrap.dedent(f"""
        import sys
        from isgame.cli import main
        sys.argv = ["isgame", "score", {str(logits)!r}, "--input", "logits", "--splits", "2", "--quiet",
                    "--json", {str(tmp_path / "score.json")!r}]
        try:
            main()
        except SystemExit as exit_:
            assert exit_.code in (0, None), exit_.code
        print(sorted(name for name in ("sklearn", "foolbox") if name in sys.modules))
    """)
    run = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "score.json").exists()


def test_the_public_api_resolves_every_name():
    missing = [name for name in isgame.__all__ if getattr(isgame, name, None) is None]
    assert not missing
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", isgame.__version__)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        isgame.nonsense  # noqa: B018


def test_streaming_metrics_share_one_interface():
    for metric in (isgame.InceptionScoreAccumulator, isgame.FeatureStatisticsAccumulator,
                   isgame.FrechetDistanceAccumulator):
        assert issubclass(metric, isgame.StreamingMetric)
    assert isgame.InceptionScoreAccumulator.higher_is_better is True
    assert isgame.FrechetDistanceAccumulator.higher_is_better is False


def readme_python_blocks() -> list[str]:
    """The Python API's examples, in docs/python.md since the README points there."""
    page = (REPOSITORY / "docs" / "python.md").read_text()
    section = page[page.index("## Examples"):]
    end = section.find("\n## ", 1)
    section = section if end < 0 else section[:end]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


@pytest.mark.slow
def test_readme_python_api_examples_run(tmp_path):
    """Every block as written, each in a fresh namespace, in one interpreter started in an empty folder."""
    blocks = readme_python_blocks()
    assert len(blocks) >= 3
    program = "\n".join(f"exec({block!r}, {{'__name__': '__main__'}})\nprint('-- block {i} done')"
                        for i, block in enumerate(blocks))
    run = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [line for line in run.stdout.splitlines() if line.startswith("-- block")] == [
        f"-- block {i} done" for i in range(len(blocks))]
    assert len(run.stdout.splitlines()) > 2 * len(blocks)  # each block printed its own results too


LIBRARY_PACKAGES = ("scoring", "attacks", "probes", "app")
NOT_OURS = ("--nproc_per_node",)  # torchrun's own flag, named where a resume needs the same process count


def test_library_errors_name_parameters_not_flags():
    """Only cli.py knows flags: a raise in library code must not spell one."""
    import ast

    offenders = []
    for package in LIBRARY_PACKAGES:
        for path in sorted((REPOSITORY / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Raise):
                    continue
                for constant in ast.walk(node):
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                        text = constant.value
                        for flag in NOT_OURS:
                            text = text.replace(flag, "")
                        if re.search(r"(^|[\s(`'])--[a-z]", text):
                            offenders.append(f"{path.relative_to(REPOSITORY)}:{node.lineno}: {constant.value!r}")
    assert not offenders, "\n".join(offenders)


def test_one_error_reads_as_a_parameter_in_python_and_as_a_flag_on_the_command_line(cli):
    import numpy as np
    from helpers import assert_one_line_error

    with pytest.raises(isgame.InvalidInputError) as info:
        isgame.inception_score(np.zeros((3, 10)), splits=5)
    assert "use splits=3 or fewer" in str(info.value) and "--" not in str(info.value)
    with pytest.raises(isgame.InvalidInputError, match=r"^steps must be >= 1, got 0$"):
        isgame.InflateAttack(steps=0)
    assert_one_line_error(cli("score", "digits:test", "--n", "3", "--splits", "5"), "use --splits 3 or fewer")
    assert_one_line_error(cli("attack", "inflate", "--steps", "0", "--quiet"), "--steps must be >= 1, got 0")
    assert_one_line_error(cli("attack", "inflate", "--resume"), "--resume needs --checkpoint PATH")
