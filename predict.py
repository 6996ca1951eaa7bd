"""Label raw examples with trained P-tuning v2 / prompt-tuning checkpoints that share one frozen backbone.

    python predict.py --model_name_or_path M --ptuning_checkpoint rte=runs/rte/best_model \
        --ptuning_checkpoint cb=runs/cb/best_model --input in.jsonl --output out.jsonl [--batch_size 64]

Each input line is one example in its task's record format (the fields of its official files: RTE and CB
{"premise", "hypothesis"}, BoolQ {"question", "passage"}, CoNLL {"tokens": [...]}, COPA {"premise", "choice1",
"choice2", "question"}, SQuAD {"question", "context"} ...) plus "adapter": the name of its checkpoint (optional when
one checkpoint is loaded). Each output line is the input line plus "prediction" (label name; tag list for tagging;
answer text for QA) and "scores" (per-label probabilities; per-word tag probabilities; the answer's score). The Python
API is serving.Predictor.

Long inputs: a tagging line longer than the checkpoint's --max_seq_length is cut into overlapping word windows, so
every word gets its tag and score (serving/windows.py); QA contexts are windowed by --doc_stride; a classification or
multiple-choice line that its task truncated gets "truncated": true on its output line (absent otherwise).

Checkpoints: a run folder stands for its best_model/ (not the last epoch's weights at its top level); a bare PATH is
named after its run folder, dots included; NAME=PATH is split only when NAME holds no path separator, so
runs/lr=0.01/best_model is a bare path. Weights or logits that are NaN or inf are refused, naming the adapter.

Output: strict JSON lines. An input line holding NaN or Infinity (Python's json reads them; JSON has no such values)
is refused with its file:line. Before anything loads, --input must be a readable file and --output a file path in an
existing writable folder, new unless --overwrite_output. The predictions are written to a fresh private file in that
folder, which then takes the --output name only if that name is still free (or, with --overwrite_output, replaces
it): of two runs onto one --output, one wins whole and the other is refused, its predictions kept in the file named.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile

from model.config import PTuningError
from tasks import DataError
from tasks.io import read_jsonl

ADAPTER_KEY = "adapter"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model_name_or_path", required=True, help="the frozen backbone the checkpoints share"
    )
    parser.add_argument("--ptuning_checkpoint", action="append", required=True, metavar="NAME=PATH",
                        help="a best_model/ folder written by run.py (or its run folder), under a name (repeat for "
                        "each adapter); a bare PATH is named after its run folder")  # fmt: skip
    parser.add_argument("--input", required=True, help='jsonl: one example per line (+ "adapter": NAME)')
    parser.add_argument("--output", required=True, help="jsonl written in input order")
    parser.add_argument("--batch_size", type=int, default=64, help="examples (features) per mixed batch")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--attn_implementation", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--overwrite_output", action="store_true", help="replace an existing --output file")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch_size must be >= 1, got {args.batch_size}")
    return args


def checkpoints(specs: list[str]) -> dict[str, str]:
    """['rte=PATH', 'PATH2'] -> {'rte': PATH, <PATH2's run folder name>: PATH2}. A spec is NAME=PATH only when the
    part before its first "=" holds no path separator (runs/lr=0.01/best_model is a bare PATH)."""
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if any(s and s in name for s in (os.sep, os.altsep)):
            sep = ""  # "=" inside a path
        if not sep:
            path = spec
            folder = os.path.normpath(path)
            name = os.path.basename(
                os.path.dirname(folder) if os.path.basename(folder) == "best_model" else folder
            )
        if not name or not path:
            raise PTuningError(
                f"--ptuning_checkpoint {spec!r}: write NAME=PATH, e.g. rte=runs/rte/best_model."
            )
        if name in out:
            raise PTuningError(
                f"--ptuning_checkpoint: the name {name!r} is given twice; name each checkpoint."
            )
        out[name] = path
    return out


def check_input(path: str) -> None:
    """--input names a readable file (a pipe is read once, so it works too)."""
    if not os.path.exists(path):
        raise DataError(f"--input {path} does not exist.")
    if os.path.isdir(path):
        raise DataError(f"--input {path} is a folder: give a jsonl file (one example per line).")
    if not os.access(path, os.R_OK):
        raise DataError(f"--input {path} cannot be read (permission denied).")


def check_output(path: str, overwrite: bool) -> None:
    """--output is a file path in an existing writable folder, and new unless --overwrite_output."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise DataError(
            f"--output {path} is a folder: give a file path, e.g. {os.path.join(path, 'out.jsonl')}."
        )
    if not os.path.isdir(folder):
        raise DataError(f"--output {path}: its folder {folder} does not exist; create it first (mkdir -p).")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"--output {path}: its folder {folder} is not writable; choose another path.")
    if os.path.lexists(path) and not overwrite:
        raise DataError(f"--output {path} exists: choose another path or pass --overwrite_output.")


def non_finite(value, name: str = "") -> str | None:
    """The name of the first NaN/Infinity number inside a parsed JSON value ("a.b[2]"), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return name
    if isinstance(value, dict):
        children = [(f"{name}.{key}" if name else key, item) for key, item in value.items()]
    elif isinstance(value, list):
        children = [(f"{name}[{k}]", item) for k, item in enumerate(value)]
    else:
        return None
    return next((found for child, item in children if (found := non_finite(item, child))), None)


def read_input(path: str, loaded: list[str]) -> tuple[list[dict], list[str], list[str]]:
    """(records without their "adapter" key, adapter per record, "file:line" per record)."""
    check_input(path)
    records, names, where = [], [], []
    for lineno, row in read_jsonl(path):  # not JSON / not an object: DataError file:line
        loc = f"{path}:{lineno}"
        bad = non_finite(row)
        if bad:  # echoed into the output, it would make that line invalid JSON
            raise DataError(
                f"{loc}: field {bad!r} is NaN or Infinity, which JSON cannot hold: write null or a number."
            )
        name = row.get(ADAPTER_KEY)
        if name is None:
            if len(loaded) != 1:
                raise DataError(
                    f'{loc}: no "{ADAPTER_KEY}" field, and {len(loaded)} checkpoints are loaded '
                    f'({", ".join(loaded)}): add "{ADAPTER_KEY}": "<name>" to each line.'
                )
            name = loaded[0]
        elif name not in loaded:
            raise DataError(f"{loc}: unknown adapter {name!r}; loaded: {', '.join(loaded)}.")
        records.append({k: v for k, v in row.items() if k != ADAPTER_KEY})
        names.append(name)
        where.append(loc)
    if not records:
        raise DataError(f"--input {path} holds no example (one JSON object per line).")
    return records, names, where


def write_output(path: str, lines: list[str], overwrite: bool) -> None:
    """`lines` under `path`, whole or not at all: written to a fresh private file in the output folder (mkstemp:
    a unique name, created exclusively, never through a symlink), which then takes the name `path` only if it is
    still free (os.link fails on an existing name; with `overwrite`, os.replace). A name taken meanwhile (another run
    onto the same --output) is left as it is: a DataError naming the file that keeps these predictions."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, partial = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            umask = os.umask(0o022)
            os.umask(umask)
            os.fchmod(f.fileno(), 0o666 & ~umask)  # the permissions a plain open() gives, not mkstemp's 0600
            f.writelines(lines)
    except BaseException as err:
        os.unlink(partial)
        if isinstance(err, OSError):  # disk full, quota ...
            raise DataError(
                f"--output {path} cannot be written ({err.strerror or err}); nothing was written."
            ) from None
        raise
    try:
        if overwrite:
            os.replace(partial, path)
            return
        try:
            os.link(partial, path)  # atomic; fails if `path` exists, even as a dangling symlink
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: claim the name exclusively, then fill it
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            os.replace(partial, path)
            return
        os.unlink(partial)
    except OSError as err:  # the name was taken meanwhile (another run), or became a folder
        if isinstance(err, FileExistsError):
            what = "was written by another run while this one predicted"
        else:
            what = f"cannot take the predictions ({err.strerror or err})"
        raise DataError(
            f"--output {path} {what}; it is left as it is, and these {len(lines)} predictions are kept in {partial}."
        ) from None


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    # cheap checks first: loading torch/transformers and the backbone takes seconds to minutes
    check_output(args.output, args.overwrite_output)
    named = checkpoints(args.ptuning_checkpoint)
    records, names, where = read_input(args.input, list(named))
    from serving import Predictor

    predictor = Predictor(
        args.model_name_or_path, device=args.device, attn_implementation=args.attn_implementation
    )
    for name, path in named.items():
        predictor.attach(name, path)
    results = predictor.predict(records, names, batch_size=args.batch_size, where=where, progress=True)
    lines = [
        json.dumps({ADAPTER_KEY: name, **record, **result}, ensure_ascii=False, allow_nan=False) + "\n"
        for record, name, result in zip(records, names, results, strict=True)
    ]
    write_output(args.output, lines, args.overwrite_output)
    print(f"Wrote {len(results)} predictions to {args.output}", file=sys.stderr)
    return results


if __name__ == "__main__":
    try:
        main()
    except (DataError, PTuningError) as err:  # user-fixable: one clear line, no traceback
        raise SystemExit(f"error: {err}") from None
