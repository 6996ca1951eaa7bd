"""Shared file plumbing for the task families: where each split's file is, a JSON-lines reader with line
numbers in their errors, and the thin Hub fallback."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import datasets

from tasks.registry import DataError

EXPLICIT_FILE_FLAGS = {"train": "train_file", "validation": "validation_file", "test": "test_file"}


def uses_local_files(data_args) -> bool:
    return bool(
        data_args.data_dir or data_args.train_file or data_args.validation_file or data_args.test_file
    )


def find_split_files(
    data_args, splits: Sequence[str], subdirs: Sequence[str], layout: dict[str, Sequence[str]]
) -> dict[str, str]:
    """Path of each requested split's file.

    Explicit --train_file/--validation_file/--test_file win. Otherwise the file is looked up under --data_dir,
    in each of `subdirs` in turn ("" = data_dir itself), by the official names in `layout[split]`, so both
    `--data_dir SuperGLUE` and `--data_dir SuperGLUE/RTE` work. A missing file is a DataError naming the layout.
    """
    found = {}
    for split in splits:
        explicit = getattr(data_args, EXPLICIT_FILE_FLAGS.get(split, ""), None)
        if explicit:
            found[split] = explicit
            continue
        if not data_args.data_dir:
            flag = EXPLICIT_FILE_FLAGS.get(split)
            raise DataError(
                f"no file for the {split!r} split: give --data_dir" + (f" or --{flag}" if flag else "") + "."
            )
        candidates = [
            os.path.join(data_args.data_dir, sub, name) for sub in subdirs for name in layout[split]
        ]
        path = next((c for c in candidates if os.path.isfile(c)), None)
        if path is None:
            expected = " or ".join(
                os.path.join(sub, name) if sub else name for sub in subdirs for name in layout[split]
            )
            raise DataError(
                f"{split} split not found under --data_dir {data_args.data_dir!r}: expected {expected} "
                f"(the official layout; see README 'Data layouts')."
            )
        found[split] = path
    return found


def read_jsonl(path: str) -> list[dict]:
    """One JSON object per non-empty line; a bad line is a DataError with file and line number."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg}).") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}.")
            rows.append(row)
    return rows


def require_keys(row: dict, keys: Sequence[str], path: str, lineno: int) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise DataError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}.")


def load_from_hub(
    hub_id: str,
    config: str | None,
    splits: Sequence[str],
    rename: dict[str, str] | None = None,
    revision: str | None = None,
):
    """datasets.load_dataset on a parquet-backed Hub id; `rename` maps our split names to the Hub's.

    `revision="refs/convert/parquet"` reads the Hub's automatic parquet export of a repository that still only
    holds a loading script on main (which datasets >= 4 refuses to run)."""
    rename = rename or {}
    try:
        loaded = {
            s: datasets.load_dataset(hub_id, config, split=rename.get(s, s), revision=revision)
            for s in splits
        }
    except Exception as err:  # offline, unknown id, ...: say what to do instead
        where = f"{hub_id}{'/' + config if config else ''}{f' ({revision})' if revision else ''}"
        raise DataError(
            f"could not load {where} from the Hugging Face Hub ({err}). "
            "Offline? Download the official files and pass --data_dir (see README 'Data layouts')."
        ) from err
    return datasets.DatasetDict(loaded)
