"""Pick the best run of a hyper-parameter search and tabulate all of its runs.

Run (from the repo root, after search_script/search*.sh):

    python search.py copa roberta                     # metric: the task's main metric
    python search.py rte roberta accuracy --root checkpoints --csv rte.csv

As the original search.py, it reads `<root>/<DATASET>-<MODEL>-search/*/best_results.json` (written by run.py) and
reports the run with the largest `best_eval_<METRIC>`: `best_<METRIC>`, the best-metrics dict and its path. Unlike
the original, the hyper-parameters are read from each run's `args.json` (not guessed from folder names), every run
is listed in a table sorted by the metric and written as CSV (default `<search folder>/runs.csv`), configurations
run with several seeds also get mean ± std, and ties go to the first run in sorted path order.

METRIC defaults to the registry's `main_metric` for the task named in the runs' args.json (tasks/registry.py);
where that is unavailable, to the original's rule: accuracy for GLUE/SuperGLUE, f1 otherwise.

If `<root>/<DATASET>-<MODEL>-search` does not exist, every `best_results.json` under `<root>` (recursively) whose
args.json names DATASET as --dataset_name is ranked instead (MODEL is then only a label), so `--root` may point at
any folder of runs.

Unreadable or metric-less result files and run folders without best_results.json are skipped with a warning.
Exit code 1 when no run can be ranked.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import statistics
import sys

# The hyper-parameters shown for each run: (column, section of args.json, key).
HPARAMS = (
    ("learning_rate", "training_args", "learning_rate"),
    ("pre_seq_len", "model_args", "pre_seq_len"),
    ("num_train_epochs", "training_args", "num_train_epochs"),
    ("seed", "training_args", "seed"),
    ("per_device_train_batch_size", "training_args", "per_device_train_batch_size"),
    ("hidden_dropout_prob", "model_args", "hidden_dropout_prob"),
    ("prefix_projection", "model_args", "prefix_projection"),
)
COLUMNS = ("metric", "best_epoch", *(name for name, _, _ in HPARAMS), "method", "run")
# Shorter headers for the printed table (the CSV keeps the args.json names).
SHORT = {
    "learning_rate": "lr",
    "pre_seq_len": "psl",
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "bs",
    "hidden_dropout_prob": "dropout",
    "prefix_projection": "proj",
}

# The original's fallback when the registry cannot be asked: accuracy for these names, f1 for the rest.
_ORIGINAL_ACCURACY_DATASETS = (
    *("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli"),
    *("boolq", "cb", "wic", "wsc", "copa", "record", "multirc"),
)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def read_json(path: str) -> dict:
    """The JSON object in `path`; raises OSError or ValueError when it is missing, unreadable or not an object."""
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def hyperparameters(run_args: dict | None) -> dict:
    """The HPARAMS columns and the method ('prefix', 'prompt' or 'finetune') from an args.json dict."""
    run_args = run_args or {}
    out = {name: run_args.get(section, {}).get(key) for name, section, key in HPARAMS}
    model_args = run_args.get("model_args", {})
    if model_args:
        out["method"] = (
            "prefix" if model_args.get("prefix") else "prompt" if model_args.get("prompt") else "finetune"
        )
    else:
        out["method"] = None
    return out


def find_run_dirs(root: str, dataset: str, model: str) -> tuple[str, list[str]]:
    """(the folder scanned, the run folders in sorted path order)."""
    search_dir = os.path.join(root, f"{dataset}-{model}-search")
    if os.path.isdir(search_dir):  # the original's layout: one folder per run
        runs = [p for p in sorted(glob.glob(os.path.join(search_dir, "*"))) if os.path.isdir(p)]
        return search_dir, runs
    # Any folder of runs: keep those whose args.json names the dataset.
    runs = []
    for path in sorted(glob.glob(os.path.join(root, "**", "best_results.json"), recursive=True)):
        run_dir = os.path.dirname(path)
        try:
            name = read_json(os.path.join(run_dir, "args.json"))["data_args"]["dataset_name"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            warn(f"skipping {run_dir}: no readable args.json to tell its dataset ({type(e).__name__}: {e})")
            continue
        if name == dataset:
            runs.append(run_dir)
    return root, runs


def default_metric(dataset: str, run_args: dict | None) -> str:
    """The registry's main metric for the run's task; else the original's accuracy/f1 rule."""
    data_args = (run_args or {}).get("data_args", {})
    family, name = data_args.get("task_name"), data_args.get("dataset_name", dataset)
    if family:
        try:
            from tasks import registry

            return registry.get_task(family, name).main_metric
        except Exception as e:  # the family module may not import here (e.g. a missing optional package)
            warn(f"task registry unavailable ({type(e).__name__}: {e}); using the original's default metric")
        return "accuracy" if family in ("glue", "superglue") else "f1"
    return "accuracy" if dataset in _ORIGINAL_ACCURACY_DATASETS else "f1"


def load_runs(run_dirs: list[str], scanned: str, dataset: str, metric: str | None) -> tuple[str, list[dict]]:
    """(metric, one row per rankable run, in path order); a run is named by its path relative to `scanned`."""
    loaded = []
    for run_dir in run_dirs:
        results_path = os.path.join(run_dir, "best_results.json")
        if not os.path.exists(results_path):
            warn(f"skipping {run_dir}: no best_results.json (unfinished run?)")
            continue
        try:
            results = read_json(results_path)
        except (OSError, ValueError) as e:
            warn(f"skipping {results_path}: unreadable ({e})")
            continue
        try:
            run_args = read_json(os.path.join(run_dir, "args.json"))
        except (OSError, ValueError) as e:
            warn(f"{run_dir}: hyper-parameters unknown, args.json unreadable ({e})")
            run_args = None
        loaded.append((run_dir, results, run_args))
    if metric is None:
        first_args = next((a for _, _, a in loaded if a), None)
        metric = default_metric(dataset, first_args)
    key = f"best_eval_{metric}"
    rows = []
    for run_dir, results, run_args in loaded:
        value = results.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            warn(f"skipping {os.path.join(run_dir, 'best_results.json')}: no numeric {key!r}")
            continue
        rows.append(
            {
                "metric": float(value),
                "best_epoch": results.get("best_epoch"),
                **hyperparameters(run_args),
                "run": os.path.relpath(run_dir, scanned),
                "path": run_dir,
                "results": results,
            }
        )
    return metric, rows


def _fmt(value) -> str:
    """Short text for the table: '?' for unknown, at most 4 significant digits for floats (100.0 -> '100')."""
    if value is None:
        return "?"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[dict], columns: tuple[str, ...], metric: str) -> str:
    header = [metric if c == "metric" else SHORT.get(c, c) for c in columns]
    cells = [[_fmt(row[c]) for c in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [header, *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def seed_groups(rows: list[dict]) -> list[dict]:
    """Mean ± std of the metric per configuration (all HPARAMS but seed) that was run with more than one seed."""
    config_keys = [name for name, _, _ in HPARAMS if name != "seed"] + ["method"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in config_keys), []).append(row)
    out = []
    for config, members in groups.items():
        if len(members) < 2:
            continue
        values = [m["metric"] for m in members]
        out.append(
            {
                **dict(zip(config_keys, config, strict=True)),
                "n": len(values),
                "mean": statistics.mean(values),
                "std": statistics.stdev(values),
                "seeds": " ".join(_fmt(m["seed"]) for m in members),
            }
        )
    return sorted(out, key=lambda g: -g["mean"])


def write_csv(path: str, rows: list[dict], metric: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([metric if c == "metric" else c for c in COLUMNS] + ["path"])
        for row in rows:
            writer.writerow([("" if row[c] is None else row[c]) for c in COLUMNS] + [row["path"]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="dataset name as in the search folder, e.g. copa")
    parser.add_argument("model", help="model tag as in the search folder, e.g. roberta")
    parser.add_argument(
        "metric", nargs="?", help="rank by best_eval_<METRIC> (default: the task's main metric)"
    )
    parser.add_argument("--root", default="checkpoints", help="folder holding <DATASET>-<MODEL>-search/")
    parser.add_argument("--csv", help="where to write the table (default: <search folder>/runs.csv)")
    args = parser.parse_args(argv)

    scanned, run_dirs = find_run_dirs(args.root, args.dataset, args.model)
    metric, rows = load_runs(run_dirs, scanned, args.dataset, args.metric)
    if not rows:
        print(
            f"error: no run of {args.dataset}-{args.model} with best_eval_{metric} under {scanned} "
            f"(expected {os.path.join(args.root, f'{args.dataset}-{args.model}-search', '*', 'best_results.json')})",
            file=sys.stderr,
        )
        return 1

    # Best: the largest metric; on a tie the first in sorted path order (max() keeps the first maximum).
    best = max(rows, key=lambda r: r["metric"])
    tied = [r["run"] for r in rows if r["metric"] == best["metric"]]
    print(f"best_{metric}: {best['metric']}")
    print(json.dumps(best["results"]))
    print(os.path.join(best["path"], "best_results.json"))
    print("hyper-parameters (args.json): " + " ".join(f"{k}={_fmt(best[k])}" for k in COLUMNS[2:-1]))
    if len(tied) > 1:
        print(
            f"tie: {len(tied)} runs share the best value ({', '.join(tied)}); the first in path order is reported"
        )

    ranked = sorted(rows, key=lambda r: -r["metric"])  # stable: ties stay in path order
    print(f"\nall {len(rows)} runs, by best_eval_{metric}:")
    print(format_table(ranked, COLUMNS, metric))
    groups = seed_groups(rows)
    if groups:
        print("\nconfigurations run with several seeds (mean ± std, sample std):")
        for g in groups:
            config = " ".join(f"{k}={_fmt(g[k])}" for k in COLUMNS[2:-1] if k != "seed")
            print(f"  {g['mean']:.4f} ± {g['std']:.4f}  (n={g['n']}, seeds {g['seeds']})  {config}")

    csv_path = args.csv or os.path.join(scanned, "runs.csv")
    write_csv(csv_path, ranked, metric)
    print(f"\nwrote {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
