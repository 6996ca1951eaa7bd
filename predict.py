"""Label raw examples with trained P-tuning v2 / prompt-tuning checkpoints that share one frozen backbone.

    python predict.py --model_name_or_path M --ptuning_checkpoint rte=runs/rte/best_model \
        --ptuning_checkpoint cb=runs/cb/best_model --input in.jsonl --output out.jsonl [--batch_size 64]

Each input line is one example in its task's record format (the fields of its official files: RTE and CB
{"premise", "hypothesis"}, BoolQ {"question", "passage"}, CoNLL {"tokens": [...]}, COPA {"premise", "choice1",
"choice2", "question"}, SQuAD {"question", "context"} ...) plus "adapter": the name of its checkpoint (optional when
one checkpoint is loaded). Each output line is the input line plus "prediction" (label name; tag list for tagging;
answer text for QA) and "scores" (per-label probabilities; per-word tag probabilities; the answer's score). The Python
API is serving.Predictor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

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
    """['rte=PATH', 'PATH2'] -> {'rte': PATH, <PATH2's run folder name>: PATH2}."""
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
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


def read_input(path: str, loaded: list[str]) -> tuple[list[dict], list[str], list[str]]:
    """(records without their "adapter" key, adapter per record, "file:line" per record)."""
    if not os.path.isfile(path):
        raise DataError(f"--input {path} does not exist.")
    records, names, where = [], [], []
    for lineno, row in read_jsonl(path):  # not JSON / not an object: DataError file:line
        loc = f"{path}:{lineno}"
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


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if os.path.exists(args.output) and not args.overwrite_output:
        raise DataError(f"--output {args.output} exists: choose another path or pass --overwrite_output.")
    named = checkpoints(args.ptuning_checkpoint)
    from serving import Predictor  # after the cheap checks: loading torch/transformers takes seconds

    predictor = Predictor(
        args.model_name_or_path, device=args.device, attn_implementation=args.attn_implementation
    )
    for name, path in named.items():
        predictor.attach(name, path)
    records, names, where = read_input(args.input, list(named))
    results = predictor.predict(records, names, batch_size=args.batch_size, where=where, progress=True)
    partial = args.output + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        for record, name, result in zip(records, names, results, strict=True):
            f.write(json.dumps({ADAPTER_KEY: name, **record, **result}, ensure_ascii=False) + "\n")
    os.replace(partial, args.output)  # never a half-written output under the final name
    print(f"Wrote {len(results)} predictions to {args.output}", file=sys.stderr)
    return results


if __name__ == "__main__":
    try:
        main()
    except (DataError, PTuningError) as err:  # user-fixable: one clear line, no traceback
        raise SystemExit(f"error: {err}") from None
