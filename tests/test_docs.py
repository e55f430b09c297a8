"""Run every code example in docs/, so that the pages cannot drift away from the code.

Each page's ```python blocks run in order in one namespace, inside a fresh temporary working
directory. A block whose first line starts with ``>>>`` runs as a doctest, so its printed output
must match. Any other block runs as plain code, and its asserts check the numbers that the page
works out by hand. Shell blocks are not run, because a real training run takes minutes. Instead,
every ``minirec-*`` command in them is checked against the options that the command declares.
"""

from __future__ import annotations

import doctest
import re
import shlex
from importlib.metadata import entry_points
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
README_FILES = [DOCS.parent / "README.md", DOCS.parent / "README.zh-CN.md"]
PAGES = sorted(path for path in DOCS.glob("*.md"))

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def fenced_blocks(text: str, language: str) -> list[tuple[int, str]]:
    """Return (first code line number, source) of each fenced block in ``language``."""
    blocks = []
    for match in _FENCE.finditer(text):
        if match.group(1) == language:
            line = text.count("\n", 0, match.start(2)) + 1
            blocks.append((line, match.group(2)))
    return blocks


def run_doctest_block(source: str, namespace: dict, page: Path, line: int) -> None:
    """Run a ``>>>`` block against ``namespace`` and copy the names it defines back into it."""
    parser = doctest.DocTestParser()
    test = parser.get_doctest(source, namespace, f"{page.name}:{line}", str(page), line - 1)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    result = runner.run(test, out=report.append, clear_globs=False)
    namespace.update(test.globs)
    if result.failed:
        pytest.fail(f"doctest block at {page.name}:{line} failed:\n" + "".join(report), pytrace=False)


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs.{page.stem}"}
    blocks = fenced_blocks(page.read_text(encoding="utf-8"), "python")
    for line, source in blocks:
        if source.lstrip().startswith(">>>"):
            run_doctest_block(source, namespace, page, line)
        else:
            # Leading newlines make traceback line numbers those of the Markdown file.
            code = compile("\n" * (line - 1) + source, str(page), "exec")
            exec(code, namespace)


def test_every_page_has_python_examples():
    pages_without_code = [page.name for page in PAGES
                          if page.name != "README.md" and not fenced_blocks(page.read_text(encoding="utf-8"), "python")]
    assert pages_without_code == []


@pytest.mark.parametrize("document", PAGES + README_FILES, ids=lambda path: path.name)
def test_relative_links_exist(document):
    text = document.read_text(encoding="utf-8")
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (document.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == []


def test_index_links_every_page():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    linked = set(_LINK.findall(index))
    missing = [page.name for page in PAGES if page.name != "README.md" and page.name not in linked]
    assert missing == []


def _minirec_commands() -> dict:
    return {entry.name: entry for entry in entry_points(group="console_scripts") if entry.name.startswith("minirec-")}


def _shell_commands(page: Path) -> list[tuple[int, list[str]]]:
    commands = []
    for line, source in fenced_blocks(page.read_text(encoding="utf-8"), "bash"):
        for offset, text in enumerate(source.splitlines()):
            text = text.split(" #")[0].strip()
            if text.startswith("minirec-"):
                commands.append((line + offset, shlex.split(text)))
    return commands


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_shell_commands_use_declared_options(page):
    commands = _minirec_commands()
    problems = []
    for line, words in _shell_commands(page):
        entry = commands.get(words[0])
        if entry is None:
            problems.append(f"line {line}: no console script named {words[0]}")
            continue
        command = entry.load()
        declared = {name for parameter in command.params
                    for name in [*parameter.opts, *getattr(parameter, "secondary_opts", [])]}
        declared |= {"--help", "-h"}
        for word in words[1:]:
            option = word.split("=")[0]
            if option.startswith("-") and option not in declared:
                problems.append(f"line {line}: {words[0]} has no option {option}")
    assert problems == []
