"""The package's shape, checked: data flows one way through bands, and no modules import
each other in a circle.

Bands, lowest first; a module may import only from its own band or the bands below it
(imports inside functions count too, so a lazy import cannot hide an upward edge):

    infrastructure   neurovis._version, errors, method, _utils
    inputs           pixels, hooks
    conditions       conditions, caption, priors
    chains           chains                       (the record that sampling writes)
    sampling         sampling
    analysis         analysis                     (chains -> facets: numbers)
    report           report                       (facets -> files)
    sources          caffe, training, then glyphs (may use training), then zoo (registers all)
    runs             runs                         (workflows callable from Python)
    front end        cli, __main__

The package's ``__init__`` is a lazy index over all of them (it imports nothing at run
time) and is left out. The graph is read from the source with :mod:`ast`, so this test
runs in milliseconds and needs nothing but the files.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "neurovis"

BANDS: list[tuple[str, ...]] = [
    ("neurovis._version", "neurovis.errors", "neurovis.method", "neurovis._utils"),
    ("neurovis.pixels", "neurovis.hooks"),
    ("neurovis.conditions", "neurovis.caption", "neurovis.priors"),
    ("neurovis.chains",),
    ("neurovis.sampling",),
    ("neurovis.analysis",),
    ("neurovis.report",),
    ("neurovis.caffe", "neurovis.training"),
    ("neurovis.glyphs",),
    ("neurovis.zoo",),
    ("neurovis.runs",),
    ("neurovis.cli", "neurovis.__main__"),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the neurovis modules it imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    mods = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in mods else base)
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target.startswith("neurovis") and target != name:
                    edges[name].add(target)
    return edges


def band_of(module: str) -> int | None:
    for level, prefixes in enumerate(BANDS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    return None


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted({*edges, *(w for ws in edges.values() for w in ws)}):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_band():
    homeless = sorted(m for m in modules() if m != "neurovis" and band_of(m) is None)
    assert not homeless, f"add these modules to a band in tests/test_architecture.py: {homeless}"


def test_no_upward_imports():
    upward = sorted(
        f"{src} -> {dst}"
        for src, dsts in import_graph().items() if src != "neurovis"
        for dst in dsts if dst != "neurovis" and band_of(dst) is not None and band_of(dst) > band_of(src)
    )
    assert not upward, "imports against the flow (lower band importing a higher one):\n" + "\n".join(upward)


def test_no_import_cycles():
    edges = {k: v for k, v in import_graph().items() if k != "neurovis"}
    assert not cycles(edges), f"modules importing each other in a circle: {cycles(edges)}"


def test_graph_reader_sees_edges():
    """The checks above would pass on an empty graph: make sure the reader finds real edges."""
    edges = import_graph()
    assert "neurovis.errors" in edges["neurovis.conditions"]
    assert "neurovis.chains" in edges["neurovis.sampling.loop"]
    assert band_of("neurovis.cli") > band_of("neurovis.sampling") > band_of("neurovis.errors")
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_top_level_is_small_and_lazy():
    import subprocess
    import sys

    import neurovis

    assert len(neurovis.__all__) <= 24, neurovis.__all__
    code = "import sys, neurovis, neurovis.cli; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.strip() == "False", "import neurovis / neurovis.cli must not import torch: " + done.stderr


LAZY_THIRD_PARTY = {
    # each costs 0.3-1.7 s to import on top of torch (measured on the dev machine, 2026-12-08)
    # and only the step that uses it needs it; torch.distributed only runs under torchrun
    "sklearn", "scipy", "matplotlib", "captum", "torchvision", "torch.distributed", "torch.nn.parallel",
}
LAZY_PACKAGES = (
    "neurovis.cli",  # the front end: `neurovis --help` must not import torch
    "neurovis.zoo",  # the registry: every source registered, one built on demand (its networks and glyph world)
)


def function_imports() -> list[tuple[str, int, str]]:
    """``(module, line, imported)`` for every import statement inside a function."""
    found = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.Import):
                        found += [(name, node.lineno, alias.name) for alias in node.names]
                    elif isinstance(node, ast.ImportFrom):
                        found.append((name, node.lineno, "." * node.level + (node.module or "")))
    return sorted(set(found))


def test_imports_inside_functions_only_for_slow_or_optional_dependencies():
    """A lazy import hides the shape of the code: outside the CLI and the zoo's factories,
    imports are at module level unless the dependency is slow to import or optional."""
    def allowed(module: str, target: str) -> bool:
        if any(module == p or module.startswith(p + ".") for p in LAZY_PACKAGES):
            return True
        return any(target == p or target.startswith(p + ".") for p in LAZY_THIRD_PARTY)

    hidden = [f"{m}:{line} imports {t}" for m, line, t in function_imports() if not allowed(m, t)]
    assert not hidden, "move these imports to the top of their module:\n" + "\n".join(hidden)
    assert ("neurovis.analysis.grid", "sklearn.manifold") in {(m, t) for m, _, t in function_imports()}


def test_no_module_imports_the_package_facade():
    """``import neurovis as nv`` inside the package would hide upward imports (the facade
    re-exports every band): modules import the module that defines what they use."""
    users = sorted(src for src, dsts in import_graph().items() if "neurovis" in dsts and src != "neurovis")
    assert not users, f"import from the defining module instead of the neurovis facade: {users}"
