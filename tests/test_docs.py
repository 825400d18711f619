"""The documentation a newcomer reads: a short README whose tour runs, links that resolve, a complete CLI page.

* docs/cli.md documents every command and every flag (long and short, and the ``--no-...`` side of a boolean)
  that ``isgame --help`` and each subcommand's ``--help`` offer: read from the click tree behind the live Typer
  app, not from help text, and the page is exactly what ``docs/generate_cli.py`` writes from it.
* README.md has at most 250 lines, and every relative link in it and in docs/*.md points to an existing file
  (and, into a Markdown page, to one of its headings).
* The README's test command is the one .ci/run runs; docs/python.md names every export of ``isgame``; the
  README's Python block runs and prints what the README shows (about 4 s: a 30-step attack on 500 noise images).
* The tours' commands exist: every ``$ isgame ...`` line of a ``console`` block in README.md and docs/*.md is
  parsed (shell quoting, ``;``/``&&``/``|`` separators) and its command path and every option it uses must be in
  the click tree, with as many positional arguments as the command takes. Only the README's ``isgame score`` line
  is run for real (about a second: 540 digits through the embedded CNN), and its printed data row must equal the
  README's, figure for figure; the other tour commands take seconds to minutes and are not run here.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))

import generate_cli  # noqa: E402  (docs/ is a folder of pages and one script, not a package)

FENCE = re.compile(r"^(```+|~~~+)(\w*)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
SEPARATORS = {";", "&&", "||", "|", "&"}


@pytest.fixture(scope="module")
def tree():
    """(path, command, context) of every command, from the live app."""
    return list(generate_cli.walk(generate_cli.root_command()))


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def sections(markdown: str) -> dict[str, str]:
    """Level-2 heading -> the text under it, up to the next level-2 heading."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def mentions(text: str, flag: str) -> bool:
    """Whether ``flag`` occurs as a whole flag (``--n`` is not found inside ``--num-samples``)."""
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


# --- (a) and (d): the command-line page ----------------------------------------------------------------------------

def test_every_command_and_every_option_of_help_is_in_cli_md(tree):
    page = sections((DOCS / "cli.md").read_text())
    assert len(tree) > 10
    for path, command, ctx in tree:
        title = " ".join(path)
        assert title in page, f"docs/cli.md has no section '## {title}'"
        section = page[title]
        for param in command.get_params(ctx):  # with the --help option click adds
            if getattr(param, "hidden", False):
                continue
            if param.param_type_name == "argument":
                assert param.name.upper() in section, f"{title}: argument {param.name} missing"
                continue
            for flag in generate_cli.flags(param):
                assert mentions(section, flag), f"{title}: option {flag} missing from docs/cli.md"


def test_cli_md_is_what_the_generator_writes_from_the_live_app():
    assert (DOCS / "cli.md").read_text() == generate_cli.render(), \
        "docs/cli.md is out of date: run python docs/generate_cli.py"


def test_the_generator_check_mode_says_when_the_page_is_stale(tmp_path):
    page = tmp_path / "cli.md"
    page.write_text("# stale\n")
    assert generate_cli.main(["--check", "--out", str(page)]) == 1
    assert generate_cli.main(["--out", str(page)]) == 0
    assert generate_cli.main(["--check", "--out", str(page)]) == 0


# --- (b): a short README, links that resolve ------------------------------------------------------------------------

def test_the_readme_is_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= 250


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_an_existing_file_and_heading(page):
    text = FENCE.sub("", page.read_text())
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        assert linked.exists(), f"{page.name}: link {target!r} points to a missing file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: link {target!r}: no such heading in {linked.name}"


def test_the_readme_links_to_every_docs_page():
    readme = README.read_text()
    for page in DOCS.glob("*.md"):
        assert f"(docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


# --- (c): the tour's commands exist, and its score runs -------------------------------------------------------------

def console_commands(page: Path) -> list[tuple[str, list[str]]]:
    """(the line, the argv after ``isgame``) of every ``isgame`` command in the page's ``$ ...`` console lines."""
    found = []
    for match in FENCE.finditer(page.read_text()):
        if match.group(2) != "console":
            continue
        for line in match.group(3).splitlines():
            if not line.startswith("$ "):
                continue
            lexer = shlex.shlex(line[2:], posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            command: list[str] = []
            for token in [*lexer, ";"]:
                if token in SEPARATORS:
                    if command and command[0] == "isgame":
                        found.append((line, command[1:]))
                    command = []
                else:
                    command.append(token)
    return found


def check_argv(argv: list[str], root) -> str | None:
    """None when ``isgame ARGV`` names an existing command with existing options, else what is wrong."""
    command, ctx, path = root, root.make_context("isgame", [], resilient_parsing=True), ["isgame"]
    rest = list(argv)
    while hasattr(command, "commands"):
        if not rest or rest[0] not in command.list_commands(ctx):
            return f"{' '.join(path)} has no command {rest[0] if rest else '(none given)'!r}"
        name = rest.pop(0)
        command = command.get_command(ctx, name)
        ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
        path.append(name)
    options = {flag: param for param in command.get_params(ctx) if param.param_type_name == "option"
               for flag in generate_cli.flags(param)}
    positional = []
    while rest:
        token = rest.pop(0)
        if token.startswith("-") and token != "-":
            flag, has_value, _ = token.partition("=")
            if flag not in options:
                return f"{' '.join(path)} has no option {flag!r}"
            param = options[flag]
            takes_value = not (param.is_flag or getattr(param, "count", False))
            if takes_value and not has_value:
                if not rest:
                    return f"{' '.join(path)}: {flag} needs a value"
                rest.pop(0)
        else:
            positional.append(token)
    arguments = [param for param in command.params if param.param_type_name == "argument"]
    required = sum(param.required for param in arguments)
    if not required <= len(positional) <= len(arguments) and not any(p.nargs == -1 for p in arguments):
        return f"{' '.join(path)} takes {len(arguments)} argument(s), got {positional}"
    return None


def tour_commands() -> list[tuple[str, str, list[str]]]:
    return [(page.relative_to(ROOT).as_posix(), line, argv) for page in pages() for line, argv in console_commands(page)]


def test_the_readme_tour_shows_each_command_once_at_least():
    shown = {tuple(argv[:2]) if argv[0] == "attack" else (argv[0],) for _, argv in console_commands(README)}
    for command in [("score",), ("attack", "inflate"), ("check",), ("matrix",), ("audit",)]:
        assert command in shown, f"the README's tour does not run isgame {' '.join(command)}"


@pytest.mark.parametrize("page, line, argv", tour_commands(), ids=lambda value: value if isinstance(value, str) else "")
def test_every_documented_console_command_and_option_exists(page, line, argv):
    problem = check_argv(argv, generate_cli.root_command())
    assert problem is None, f"{page}: {line}\n{problem}"


def test_the_argv_check_catches_a_wrong_command_option_or_argument_count():
    root = generate_cli.root_command()
    assert check_argv(["score", "digits:test", "--n", "5", "-q"], root) is None
    assert "no option '--bogus'" in check_argv(["score", "digits:test", "--bogus"], root)
    assert "no command 'scroe'" in check_argv(["scroe", "digits:test"], root)
    assert "argument" in check_argv(["score"], root)
    assert "no command 'explode'" in check_argv(["attack", "explode"], root)


def test_the_readme_score_runs_and_prints_the_readme_row():
    (line, argv), = [(line, argv) for line, argv in console_commands(README) if argv[0] == "score"]
    block = README.read_text().split(line, 1)[1].split("```", 1)[0]
    shown = [row.split() for row in block.splitlines() if row.strip().startswith(argv[1])]
    assert shown, f"the README shows no data row for {argv[1]}"

    from isgame.cli import app

    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    printed = [row.split() for row in result.output.splitlines() if row.strip().startswith(argv[1])]
    assert printed == shown
    header = next(row for row in block.splitlines() if "source" in row and "splits" in row)
    assert header.split() == next(row for row in result.output.splitlines() if "source" in row).split()


# --- the README's other promises --------------------------------------------------------------------------------

def test_ci_runs_the_readme_test_command():
    blocks = [m.group(3) for m in FENCE.finditer(README.read_text()) if m.group(2) == "sh"]
    test_command, = [line for block in blocks for line in block.splitlines() if "pytest" in line]
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_python_md_names_every_export():
    import isgame

    page = (DOCS / "python.md").read_text()
    missing = [name for name in isgame.__all__ if name != "__version__" and f"`{name}`" not in page]
    assert not missing, f"docs/python.md does not name {missing}"


def test_the_readme_python_block_runs_and_prints_what_the_readme_shows(capsys):
    blocks = [(m.group(2), m.group(3)) for m in FENCE.finditer(README.read_text())]
    index = next(i for i, (language, _) in enumerate(blocks) if language == "python")
    code, (language, shown) = blocks[index][1], blocks[index + 1]
    assert language == "text"
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    shown = shown.strip().splitlines()
    assert printed[0] == shown[0]  # the one-shot IS of seeded logits: exact on any machine
    assert printed[1][:len("inflated noise: IS 2.05 -> 9.99")] == shown[1][:len("inflated noise: IS 2.05 -> 9.99")]
