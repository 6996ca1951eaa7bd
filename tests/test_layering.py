"""The layering (issue 32): tasks/, training/ and model/ at the bottom, serving/ on them, run.py, predict.py,
search.py and arguments.py on top; no import runs back up, and one loading layer (model/loading.py)."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP = {"run", "arguments", "search", "predict", "quickstart"}
# package -> what it may never import (anything above it): tasks < model < training < serving < the scripts
FORBIDDEN = {
    "tasks": TOP | {"serving", "benchmarks", "model", "training"},
    "model": TOP | {"serving", "benchmarks", "training"},
    "training": TOP | {"serving", "benchmarks"},
    "serving": TOP | {"benchmarks"},
}
AUTO = {"AutoModel", "AutoConfig", "AutoTokenizer"}


def imported_modules(path: str) -> set[str]:
    """The top-level names of every module `path` imports, at any depth (lazy imports inside functions too)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_runs_back_up(package):
    folder = os.path.join(ROOT, package)
    upward = {
        f"{package}/{name}": sorted(imported_modules(os.path.join(folder, name)) & FORBIDDEN[package])
        for name in sorted(os.listdir(folder))
        if name.endswith(".py")
    }
    assert {where: names for where, names in upward.items() if names} == {}


def loads(path: str) -> list[str]:
    """The Auto*.from_pretrained calls in `path`."""
    with open(path) as f:
        tree = ast.parse(f.read())
    return [
        node.func.value.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "from_pretrained"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in AUTO
    ]


def test_backbones_configs_and_tokenizers_load_in_one_place():
    """Auto*.from_pretrained only in model/loading.py: run.py, serving/ and the method initialisation call it."""
    paths = [os.path.join(ROOT, name) for name in ("run.py", "predict.py", "arguments.py")]
    for package in FORBIDDEN:
        paths += [os.path.join(ROOT, package, n) for n in sorted(os.listdir(os.path.join(ROOT, package)))]
    found = {os.path.relpath(p, ROOT): loads(p) for p in paths if p.endswith(".py")}
    assert {where: sorted(set(calls)) for where, calls in found.items() if calls} == {
        "model/loading.py": sorted(AUTO)
    }


def test_an_unused_pooler_is_not_reported_as_unexpected(tiny_bert):
    """A token-level head does not build the pooler: transformers' bold load report about its unused weights is
    dropped, and only that report (the control load without the filter still logs it)."""
    import logging

    from transformers import AutoModel

    from model.loading import load_backbone

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    kept = Keep()
    logger = logging.getLogger("transformers.modeling_utils")
    logger.addHandler(kept)
    try:
        AutoModel.from_pretrained(tiny_bert, add_pooling_layer=False)
        control = "\n".join(kept.messages)
        assert "LOAD REPORT" in control and "pooler.dense.weight" in control
        kept.messages.clear()
        backbone = load_backbone(tiny_bert, pooler=False)
        assert backbone.pooler is None and not any("LOAD REPORT" in m for m in kept.messages)
    finally:
        logger.removeHandler(kept)
