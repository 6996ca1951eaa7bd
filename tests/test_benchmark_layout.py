"""benchmarks/ as a package: every module imports, nothing edits sys.path, no import circle among its modules, no
import of tests/, every documented command is `python -m benchmarks.<module>` of a real entry.

The import graph is read from the source (ast), function-local imports included: a lazy import closes a circle too."""

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
TEST_MODULES = {"tests", "tiny", "fixtures", "conftest"}  # what tests/ provides on sys.path


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(BENCHMARKS.rglob("*.py"))}
ENTRIES = sorted(name for name, p in MODULES.items() if 'if __name__ == "__main__":' in p.read_text())


def imported(name: str, path: Path) -> set[str]:
    """Every module `name` imports (anywhere in the file), as dotted names; `from a import b` names a.b as well,
    for when b is a module. Relative imports resolved against the module's package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def graph() -> dict[str, set[str]]:
    """benchmarks module -> the benchmarks modules it imports (a module's import also runs its packages' __init__)."""
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for target in imported(name, path):
            parts = target.split(".")
            targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        edges[name] = {t for t in targets if t in MODULES and t != name}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as [a, b, ..., a], or None (depth-first; `path` is the chain being followed)."""
    state: dict[str, str] = {}

    def visit(path):
        state[path[-1]] = "open"
        for nxt in sorted(edges.get(path[-1], ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit([*path, nxt])):
                return found
        state[path[-1]] = "done"
        return None

    for node in sorted(edges):
        if node not in state and (found := visit([node])):
            return found
    return None


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle_among_the_benchmarks_modules():
    edges = graph()
    assert edges["benchmarks.gpu_check"] >= {
        "benchmarks.gpu.correctness",
        "benchmarks.gpu.speed",
    }  # graph is read
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_nothing_in_benchmarks_edits_sys_path():
    found = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            by_attribute = (
                isinstance(node, ast.Attribute)
                and node.attr == "path"
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            )
            by_import = isinstance(node, ast.ImportFrom) and node.module == "sys"
            by_import = by_import and any(alias.name == "path" for alias in node.names)
            if by_attribute or by_import:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, (
        f"sys.path used in benchmarks/ (run entries with `python -m benchmarks.<module>`): {found}"
    )


def test_benchmarks_never_import_tests():
    found = {
        name: sorted(t for t in imported(name, path) if t.split(".")[0] in TEST_MODULES)
        for name, path in MODULES.items()
    }
    assert not {k: v for k, v in found.items() if v}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_every_entry_has_a_main():
    assert {"benchmarks.speed", "benchmarks.gpu_check", "benchmarks.time_to_accuracy", "benchmarks.serving",
            "benchmarks.reproduce", "benchmarks.eval_cost", "benchmarks.tta.cell"} <= set(ENTRIES)  # fmt: skip
    for name in ENTRIES:
        if (
            name != "benchmarks.tta.cell"
        ):  # a child's entry: `python -m benchmarks.tta.cell OUT RUN_PY_ARGS...`
            assert callable(importlib.import_module(name).main), name


DOCUMENTED = [ROOT / "README.md", ROOT / "Makefile", *sorted(BENCHMARKS.rglob("*.md")),
              *sorted(BENCHMARKS.rglob("*.py")), *sorted((ROOT / "run_script").glob("*.sh")),
              *sorted((ROOT / "search_script").glob("*.sh"))]  # fmt: skip


def test_documented_commands_run_benchmarks_as_modules():
    """No `python benchmarks/x.py` is left anywhere; every `python -m benchmarks.x` names a real entry."""
    old, named = [], set()
    for path in DOCUMENTED:
        text = path.read_text()
        old += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(r"python3? benchmarks/\S+", text)]
        named.update(re.findall(r"python3? -m (benchmarks(?:\.\w+)+)", text))
    assert not old
    assert {"benchmarks.speed", "benchmarks.gpu_check", "benchmarks.time_to_accuracy", "benchmarks.serving",
            "benchmarks.reproduce", "benchmarks.eval_cost"} <= named  # fmt: skip
    assert named <= set(ENTRIES), named - set(ENTRIES)


def test_the_rss_worker_runs_as_a_module_child():
    """speed.py's peak-RSS child is `python -m benchmarks.speed --rss-worker REQUEST` from the repository root."""
    from dataclasses import asdict

    from benchmarks.common.spec import TINY

    request = json.dumps({"spec": asdict(TINY), "variant": "prefix", "optim": "fused", "threads": 1})
    cmd = [sys.executable, "-m", "benchmarks.speed", "--rss-worker", request]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True, cwd=ROOT)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["rss_peak_mib"] >= figures["rss_before_model_mib"] > 0
