"""The benchmarks' result files: JSON written whole (its folder made), JSON read back with a default."""

from __future__ import annotations

import json
import os


def write_json(path: str, data, indent: int = 1) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=indent)


def read_json(path: str, default=None):
    """The file's JSON, or `default` when it is missing or not valid JSON (an unfinished run, a fresh clone)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default
