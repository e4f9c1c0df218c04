"""The README and docs cannot drift: generated pages are current, code snippets run as
pasted, the docs site builds without a warning, no "SPEC" (users do not have it), and every
relative link points to a file.

Snippet convention (README.md and docs/*.md): every ```python block runs, except one whose
first line is ``# not run: <why>`` (e.g. it needs downloaded weights). The README's blocks
each run in a fresh interpreter; a docs page's blocks run in order in one interpreter (in a
temporary folder), as a reader pasting them one after the other would, so a block may use
what an earlier block of its page made. Runnable snippets keep their budgets small
(2 chains × 20 steps) so that the whole file stays fast.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOC_FILES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "results" / "README.md"]
SKIP_MARK = "# not run:"
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))
RESULTS = ROOT / "bench" / "results"


def _make_docs():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import make_docs
    finally:
        sys.path.pop(0)
    return make_docs


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_generated_pages_are_current():
    make_docs = _make_docs()
    for path, text in make_docs.pages().items():
        if path.name == "cli.md" and path.exists() and f"<!-- {make_docs.PY_STAMP} -->" not in path.read_text():
            continue  # argparse lays out help differently under another Python; CI's Python compares it
        assert path.exists(), f"{path.name} missing: run python scripts/make_docs.py"
        assert path.read_text() == text, f"{path.name} is stale: run python scripts/make_docs.py"


def test_make_docs_check_mode():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_docs.py"), "--check"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_one_current_file_per_benchmark():
    """Every file of bench/results is a benchmark's current file: in make_docs.CURRENT (its
    Markdown table) and in the README's table of current files (table and JSON)."""
    make_docs = _make_docs()
    tables = {p.name for p in RESULTS.glob("*.md")} - {"README.md"}
    assert tables == set(make_docs.CURRENT), (f"not in CURRENT: {sorted(tables - set(make_docs.CURRENT))}; "
                                              f"in CURRENT, missing: {sorted(set(make_docs.CURRENT) - tables)}")
    on_disk = {p.name for p in RESULTS.iterdir()} - {"README.md"}
    assert {p.rsplit(".", 1)[1] for p in on_disk} <= {"md", "json"}, sorted(on_disk)
    orphans = sorted(p for p in on_disk if p.endswith(".json") and p.removesuffix(".json") + ".md" not in on_disk)
    assert not orphans, f"JSON without its table: {orphans}"
    readme = (RESULTS / "README.md").read_text()
    table = readme.split("## Current file of each benchmark", 1)[1].split("\n## ", 1)[0]
    listed = []
    for name in re.findall(r"\| `([\w.{},]+)` \|", table):
        stem, _, ext = name.partition(".")
        listed += [f"{stem}.{e}" for e in ext.strip("{}").split(",")]
    assert sorted(listed) == sorted(on_disk), ("bench/results/README.md's table of current files and the folder "
                                               f"differ: {sorted(set(listed) ^ on_disk)}")
    for name in make_docs.CURRENT:
        assert f"<!-- include: {name} -->" in (ROOT / "docs" / "benchmarks.intro.md").read_text(), \
            f"docs/benchmarks.intro.md does not include {name}"


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_spec_citation(path):
    assert "SPEC" not in path.read_text(), f"{path.relative_to(ROOT)} cites a SPEC users do not have"


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_exist(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)  # not inside code blocks
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'href="([^"]+)"', text)
    missing = []
    for target in targets:
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0]
        if not (path.parent / file).exists():
            missing.append(target)
    assert not missing, f"{path.relative_to(ROOT)}: broken links {missing}"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def test_readme_has_runnable_snippets():
    blocks = [b for b in _python_blocks(README.read_text()) if not b.startswith(SKIP_MARK)]
    assert blocks, "the README should show Python that runs"
    for block in blocks:
        assert "import neurovis as nv" in block, "every README snippet imports neurovis as nv itself"


@pytest.mark.parametrize("path", [README, *DOC_PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_skipped_snippets_say_why(path):
    for block in _python_blocks(path.read_text()):
        if block.startswith(SKIP_MARK):
            assert block.splitlines()[0].removeprefix(SKIP_MARK).strip(), \
                f"{path.relative_to(ROOT)}: '{SKIP_MARK}' without a reason"


@pytest.mark.parametrize("index", range(len(_python_blocks(README.read_text()))))
def test_readme_snippet_runs_as_pasted(index, tmp_path):
    block = _python_blocks(README.read_text())[index]
    if block.startswith(SKIP_MARK):
        pytest.skip(block.splitlines()[0])
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"README snippet {index + 1} failed:\n{done.stderr[-3000:]}"


# Runs a page's blocks (JSON on stdin) in order in one namespace; names the block that fails.
_PAGE_RUNNER = """
import json, sys, traceback
page, blocks = json.load(sys.stdin)
ns = {"__name__": "__main__"}
for number, block in blocks:
    try:
        exec(compile(block, f"{page}, python block {number}", "exec"), ns)
    except BaseException:
        traceback.print_exc()
        sys.exit(f"{page}: python block {number} failed")
"""


def _runnable_pages() -> list[Path]:
    return [p for p in DOC_PAGES if any(not b.startswith(SKIP_MARK) for b in _python_blocks(p.read_text()))]


@pytest.mark.parametrize("path", _runnable_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_snippets_run_as_pasted(path, tmp_path):
    blocks = [(i + 1, b) for i, b in enumerate(_python_blocks(path.read_text())) if not b.startswith(SKIP_MARK)]
    page = str(path.relative_to(ROOT))
    done = subprocess.run([sys.executable, "-c", _PAGE_RUNNER], input=json.dumps([page, blocks]), cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{page}: a snippet failed:\n{done.stderr[-3000:]}"


def test_docs_site_builds_strict(tmp_path):
    """mkdocs.yml's site (nav over docs/, the API reference from docstrings) builds with
    --strict: a broken link or anchor, a page left out of the nav or a docstring
    mkdocstrings cannot read fails here."""
    env = {**_env(), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{output[-4000:]}"
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert not warnings, "mkdocs warned:\n" + "\n".join(warnings)
    assert (tmp_path / "site" / "api" / "index.html").is_file()
