"""Shared file plumbing for the task families: where each split's file is, the one text reader every local
file goes through (read_lines; read_jsonl and read_json on top of it), the thin Hub fallback, and the field
checks of one user record (check_record: predict.py's raw records, Task.read_example).

Text contract, the same for every family (SuperGLUE/SQuAD json, GLUE tsv, CoNLL/SRL column files): UTF-8 with
or without a BOM, lines ending in LF or CRLF. A byte that is not UTF-8 and an empty split are a DataError
naming the file (and line), raised while loading, before any training.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterator, Sequence

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


def read_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, text without its line ending) for every line of a UTF-8 text file.

    A leading BOM is dropped (so `\\ufeff-DOCSTART-` or `\\ufeff{...` never reach a parser); LF and CRLF
    both end a line, and only they do (a U+2028 inside a JSON string stays text).
    A byte that is not UTF-8 is a DataError "file:line: not valid UTF-8 (byte 0x.. at column N)", the column
    counted in characters from 1, as an editor shows it.
    """
    with open(path, "rb") as f:  # binary: decode line by line, so a bad byte is found with its line
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
                if not raw:  # a file that is only a BOM has no line at all
                    return
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                column = len(raw[: err.start].decode("utf-8")) + 1  # the bytes before err.start are valid
                raise DataError(
                    f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {column})."
                ) from None
            yield lineno, text.removesuffix("\n").removesuffix("\r")


def read_jsonl(path: str) -> list[tuple[int, dict]]:
    """(line number, object) per non-empty line, so later checks can name file:line; a bad line is a
    DataError with file and line number."""
    rows = []
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg}).") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}.")
        rows.append((lineno, row))
    return rows


def read_json(path: str):
    """One JSON document (SQuAD, SpERT CoNLL04) read through read_lines; a syntax error names file:line, an
    empty file is a DataError."""
    text = "\n".join(line for _, line in read_lines(path))
    if not text.strip():
        raise DataError(f"{path}: empty file (expected one JSON document).")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg}).") from None


def require_examples(rows: list, path: str, expected: str) -> list:
    """`rows` when there is at least one; otherwise a DataError naming the file, at load time (an empty split
    would otherwise train a whole epoch and then fail inside the Trainer)."""
    if not rows:
        raise DataError(f"{path}: no examples (expected {expected}).")
    return rows


def require_keys(row: dict, keys: Sequence[str], where: str) -> None:
    """A DataError "<where>: missing field(s) ..." (where = "file:line") when `row` lacks one of `keys`."""
    missing = [k for k in keys if k not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}.")


_KINDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}


def _kind(value_or_type) -> str:
    kind = value_or_type if isinstance(value_or_type, type) else type(value_or_type)
    return _KINDS.get(kind, "null" if value_or_type is None else kind.__name__)


def describe_layout(layout) -> str:
    """A record layout as text: {premise: string, hypothesis: string}, [string, ...] for a list."""
    if isinstance(layout, dict):
        return "{" + ", ".join(f"{key}: {describe_layout(sub)}" for key, sub in layout.items()) + "}"
    if isinstance(layout, list):
        return f"[{describe_layout(layout[0])}, ...]"
    return _kind(layout).split()[-1]


def check_record(record, layout: dict, where: str) -> None:
    """A DataError "<where>: ..." naming the first field of a user record (one parsed JSON object) that is
    missing or not of its layout's type, and the whole layout expected. layout: field -> a type (str, int), a
    nested layout dict, or [item layout] for a list. Fields beyond the layout are allowed (readers ignore
    them)."""
    expected = f"expected {describe_layout(layout)}"

    def walk(value, layout, name):
        kind = dict if isinstance(layout, dict) else list if isinstance(layout, list) else layout
        # JSON true/false are not integers here, though Python's bool is an int
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            what = f"field {name!r}" if name else "the record"
            raise DataError(f"{where}: {what} must be {_kind(kind)}, got {_kind(value)}; {expected}.")
        if isinstance(layout, dict):
            for key, sub in layout.items():
                field = f"{name}.{key}" if name else key
                if key not in value:
                    raise DataError(f"{where}: missing field {field!r}; {expected}.")
                walk(value[key], sub, field)
        elif isinstance(layout, list):
            for k, item in enumerate(value):
                walk(item, layout[0], f"{name}[{k}]")

    walk(record, layout, "")


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


def column(data, name: str) -> list:
    """A column as a plain list, from a datasets.Dataset, a dict of lists or a list of dicts."""
    if isinstance(data, list):
        return [row[name] for row in data]
    return list(data[name])
