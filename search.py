"""Pick the best run of a hyper-parameter search and tabulate all of its runs.

    python search.py copa roberta                     # metric: the task's main metric
    python search.py rte roberta accuracy --root checkpoints --csv rte.csv

As the original, it ranks `<root>/<DATASET>-<MODEL>-search/*/best_results.json` by `best_eval_<METRIC>` (default:
the task's main metric, tasks/registry.py; losses and runtime are minimised) and prints the best run's value, its
results and path. Unlike the original, hyper-parameters come from each run's args.json; every run is listed in a
table and written as CSV (default `<search folder>/runs.csv`) with its backbone; configurations run with several
seeds get mean ± std; ties go to the first run in path order. Without the search folder, the runs under `--root`
whose args.json names DATASET and a backbone MODEL names (training/run_records.py) are ranked, else exit 1 listing
the backbones found. Marked and ranked last, never the headline: `*` a run without a readable args.json, `!` a run
stopped by a non-finite loss (also left out of the means). Unreadable files are skipped with a warning; exit 1 when
no run can be ranked.

For search_script/search.sh: `python search.py --same-args RUN_DIR -- RUN.PY FLAGS...` exits 0 when run.py's own
parser turns FLAGS into the result-changing arguments RUN_DIR/args.json recorded (training/flags.py), 1 with the
differences, 3 without a readable args.json; `python search.py --finished RUN_DIR` exits 0 for a complete run's
best_results.json, 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys

from training.flags import COLUMNS as COLUMNS_OF_FLAGS
from training.flags import sweep_differences
from training.run_folder import read_args as read_recorded_args
from training.run_records import (  # noqa: F401  (tag_matches: search.tag_matches in tests)
    ARGS_SECTIONS,
    available_metrics,
    backbone,
    find_run_dirs,
    is_metric_number,
    lower_is_better,
    not_finite_reason,
    rank,
    read_args,
    read_json,
    stopped_reason,
    tag_matches,
    warn,
)

# The hyper-parameters shown for each run (the schema's search columns, training/flags.py) and their short headers.
HPARAMS = tuple(COLUMNS_OF_FLAGS)
COLUMNS = ("metric", "best_epoch", *HPARAMS, "method", "backbone", "run")
SHORT = {name: header for name, header in COLUMNS_OF_FLAGS.items() if header != name}


def hyperparameters(run_args: dict | None) -> dict:
    """The HPARAMS columns, the method ('prefix', 'prompt' or 'finetune') and the backbone from an args.json dict
    (read_args)."""
    run_args = run_args or {}
    sections = [run_args.get(section) for section in ARGS_SECTIONS if isinstance(run_args.get(section), dict)]
    out = {name: next((sec[name] for sec in sections if name in sec), None) for name in HPARAMS}
    out["backbone"] = backbone(run_args)
    model_args = run_args.get("model_args", {})
    if model_args:  # recorded since the method table; older runs: from the flags
        out["method"] = model_args.get("method") or (
            "prefix" if model_args.get("prefix") else "prompt" if model_args.get("prompt") else "finetune"
        )
    else:
        out["method"] = None
    return out


def default_metric(dataset: str, run_args: dict | None) -> str:
    """The registry's main metric for the run's task (tasks/ is light: no model, no transformers). Without
    args.json: the main metric of the datasets named `dataset` in any family, if they agree; else "f1"."""
    from tasks import registry

    data_args = (run_args or {}).get("data_args", {})
    family, name = data_args.get("task_name"), data_args.get("dataset_name", dataset)
    if isinstance(family, str) and family and isinstance(name, str):
        try:
            return registry.get_task(family, name).main_metric
        except ValueError as e:  # args.json of a task this checkout does not register
            warn(f"{e}; ranking by the main metric of the datasets named {dataset!r}")
    metrics = {
        registry.get_task(fam, dataset).main_metric
        for fam in registry.FAMILIES
        if dataset in registry.dataset_names(fam)
    }
    return metrics.pop() if len(metrics) == 1 else "f1"


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
            run_args = read_args(run_dir)
        except (OSError, ValueError) as e:
            warn(f"{run_dir}: hyper-parameters unknown, args.json unreadable ({e})")
            run_args = None
        loaded.append((run_dir, results, run_args))
    if metric is None:
        first_args = next((a for _, _, a in loaded if a), None)
        metric = default_metric(dataset, first_args)
    key = f"best_eval_{metric}"
    if loaded and not any(is_metric_number(results.get(key)) for _, results, _ in loaded):
        return metric, []  # main() lists the metrics the runs do have; no warning per run
    rows = []
    for run_dir, results, run_args in loaded:
        value = results.get(key)
        if not is_metric_number(value):
            why = (
                f" ({not_finite_reason(value)}: counts as missing)"
                if is_metric_number(value, finite=False)
                else ""
            )
            warn(f"skipping {os.path.join(run_dir, 'best_results.json')}: no numeric {key!r}{why}")
            continue
        rows.append(
            {
                "metric": float(value),
                "best_epoch": results.get("best_epoch"),
                **hyperparameters(run_args),
                "run": os.path.relpath(run_dir, scanned),
                "args_json": run_args is not None,
                "stopped": stopped_reason(results),
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


def _marks(row: dict) -> str:
    """'*' no readable args.json, '!' stopped by a non-finite loss (explained under the table)."""
    return ("*" if not row["args_json"] else "") + ("!" if row["stopped"] else "")


def format_table(rows: list[dict], columns: tuple[str, ...], metric: str) -> str:
    header = [metric if c == "metric" else SHORT.get(c, c) for c in columns]
    cells = [[_fmt(row[c]) + (_marks(row) if c == "run" else "") for c in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [header, *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def seed_groups(rows: list[dict], metric: str) -> list[dict]:
    """Mean ± std of the metric per configuration (all HPARAMS but seed, method, backbone)
    that was run with more than one seed;
    runs without args.json (configuration unknown) are left out, and so are runs stopped by a non-finite loss
    (their seeds are listed under "stopped"). Best mean first."""
    config_keys = [name for name in HPARAMS if name != "seed"] + ["method", "backbone"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if not row["args_json"]:
            continue
        # repr: values from a hand-edited args.json may be unhashable (a list) or NaN (never equal to itself).
        groups.setdefault(tuple(repr(row[k]) for k in config_keys), []).append(row)
    out = []
    for members in groups.values():
        stopped = [m for m in members if m["stopped"]]
        members = [m for m in members if not m["stopped"]]
        if len(members) < 2:
            continue
        values = [m["metric"] for m in members]
        out.append(
            {
                **{k: members[0][k] for k in config_keys},
                "n": len(values),
                "mean": statistics.mean(values),
                "std": statistics.stdev(values),
                "seeds": " ".join(_fmt(m["seed"]) for m in members),
                "stopped": " ".join(_fmt(m["seed"]) for m in stopped),
            }
        )
    sign = 1 if lower_is_better(metric) else -1
    return sorted(out, key=lambda g: sign * g["mean"])


def write_csv(path: str, rows: list[dict], metric: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([metric if c == "metric" else c for c in COLUMNS] + ["args_json", "stopped", "path"])
        for row in rows:
            writer.writerow(
                [("" if row[c] is None else row[c]) for c in COLUMNS]
                + [row["args_json"], row["stopped"] or "", row["path"]]
            )


def args_differences(run_dir: str, flags: list[str]) -> list[str] | None:
    """How run_dir/args.json differs from the run that the run.py command line `flags` would start, parsed by
    run.py's own parser and compared by the resume rule plus what the sweep scores (training/flags.py); one line each,
    [] = the same run, None when args.json is missing or unreadable. Imports run.py's arguments (transformers)."""
    from arguments import run_payload

    recorded = read_recorded_args(run_dir)
    if recorded is None:
        return None
    try:
        current = run_payload(flags)
    except ValueError as err:
        return [str(err)]
    return sweep_differences(recorded, current, flags)


def same_args_main(argv: list[str]) -> int:
    """`search.py --same-args RUN_DIR -- FLAGS...`: exit 0 same, 1 different (printed), 3 no readable args.json."""
    if len(argv) < 2 or argv[0] != "--same-args" or (len(argv) > 2 and argv[2] != "--"):
        print("usage: search.py --same-args RUN_DIR -- RUN.PY FLAGS...", file=sys.stderr)
        return 2
    diffs = args_differences(argv[1], argv[3:])
    if diffs is None:
        print(f"no readable args.json in {argv[1]}")
        return 3
    if diffs:
        print("; ".join(diffs))
    return 1 if diffs else 0


def finished_main(argv: list[str]) -> int:
    """`search.py --finished RUN_DIR` (search.sh): exit 0 when RUN_DIR/best_results.json is a complete run's, 1
    with the reason when it is missing, unreadable or marked "stopped" (training hit a non-finite loss)."""
    if len(argv) != 2:
        print("usage: search.py --finished RUN_DIR", file=sys.stderr)
        return 2
    path = os.path.join(argv[1], "best_results.json")
    try:
        reason = stopped_reason(read_json(path))
    except FileNotFoundError:
        print(f"no {path}")
        return 1
    except (OSError, ValueError) as e:
        print(f"{path} unreadable ({e})")
        return 1
    if reason:
        print(f"training stopped early ({reason}); if it stops again, lower the learning rate")
        return 1
    return 0


def report_best(ranked: list[dict], metric: str) -> None:
    """The best run (ranked[0], a complete one): its value, results, path and hyper-parameters; ties; and the
    runs that scored better but are ranked after it (no args.json, or stopped)."""
    best, lower = ranked[0], lower_is_better(metric)
    tied = [
        r["run"]
        for r in ranked
        if r["metric"] == best["metric"] and r["args_json"] == best["args_json"] and not r["stopped"]
    ]
    print(f"best_{metric}: {best['metric']}")
    print(json.dumps(best["results"]))
    print(os.path.join(best["path"], "best_results.json"))
    print("hyper-parameters (args.json): " + " ".join(f"{k}={_fmt(best[k])}" for k in COLUMNS[2:-1]))
    if not best["args_json"]:
        which = "no complete run" if any(r["args_json"] for r in ranked) else "no run"
        warn(f"{which} has a readable args.json: the best run's hyper-parameters ({best['run']}) are unknown")
    if len(tied) > 1:
        print(
            f"tie: {len(tied)} runs share the best value ({', '.join(tied)}); the first in path order is reported"
        )
    better = [r for r in ranked if (r["metric"] < best["metric"] if lower else r["metric"] > best["metric"])]
    unknown = [r["run"] for r in better if not r["args_json"] and not r["stopped"]]
    if unknown and best["args_json"]:
        warn(
            f"not ranked first because they have no args.json (hyper-parameters unknown): {', '.join(unknown)}"
        )
    stopped = [r["run"] for r in better if r["stopped"]]
    if stopped:
        warn(
            f"not ranked first because training stopped on a non-finite loss (the best of the epochs before it): "
            f"{', '.join(stopped)}"
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--same-args"]:
        return same_args_main(argv)
    if argv[:1] == ["--finished"]:
        return finished_main(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="dataset name as in the search folder, e.g. copa")
    parser.add_argument("model", help="model tag as in the search folder, e.g. roberta")
    parser.add_argument(
        "metric",
        nargs="?",
        help="rank by best_eval_<METRIC> (default: the task's main metric); losses and runtime are minimised",
    )
    parser.add_argument("--root", default="checkpoints", help="folder holding <DATASET>-<MODEL>-search/")
    parser.add_argument("--csv", help="where to write the table (default: <search folder>/runs.csv)")
    args = parser.parse_args(argv)

    scanned, run_dirs, others = find_run_dirs(args.root, args.dataset, args.model)
    found = ", ".join(f"{name} ({n} run{'s' if n > 1 else ''})" for name, n in sorted(others.items()))
    if not run_dirs and others:  # never another model's runs under this model's name
        example = next((name for name in sorted(others) if name != "model not recorded"), None)
        print(
            f"error: no {args.dataset} run of model {args.model!r} under {args.root} (and no "
            f"{os.path.join(args.root, f'{args.dataset}-{args.model}-search')}); the {args.dataset} runs there "
            f"used: {found}"
            + (f"; e.g. `python search.py {args.dataset} {example} --root {args.root}`" if example else ""),
            file=sys.stderr,
        )
        return 1
    if others:
        print(f"note: left out the {args.dataset} runs of other models: {found}", file=sys.stderr)
    metric, rows = load_runs(run_dirs, scanned, args.dataset, args.metric)
    if not rows:
        present = available_metrics(run_dirs)
        if present:  # results exist, only not for this metric
            print(
                f"error: no run of {args.dataset}-{args.model} under {scanned} has best_eval_{metric}; the runs "
                f"have: {', '.join(present)} (e.g. `python search.py {args.dataset} {args.model} {present[0]}`)",
                file=sys.stderr,
            )
        else:
            print(
                f"error: no run of {args.dataset}-{args.model} with best_eval_{metric} under {scanned} "
                f"(expected {os.path.join(args.root, f'{args.dataset}-{args.model}-search', '*', 'best_results.json')})",
                file=sys.stderr,
            )
        return 1

    mismatched = sorted(
        {r["backbone"] for r in rows if r["backbone"] and not tag_matches(args.model, r["backbone"])}
    )
    if mismatched:  # a search folder is named by its sweep (MODEL_TAG), whatever the runs loaded
        warn(
            f"runs in {scanned} used {', '.join(mismatched)}, which the model tag {args.model!r} does not name; "
            "the backbone column says which run used which"
        )
    lower = lower_is_better(metric)
    if lower:
        warn(f"{metric} is lower-is-better: the smallest best_eval_{metric} is reported")
    ranked = rank(rows, metric)  # complete runs with args.json first; stable: ties stay in path order
    all_stopped = ranked[0]["stopped"] is not None
    if all_stopped:  # never a headline: the table below still lists them
        print(
            f"error: every run of {args.dataset}-{args.model} with best_eval_{metric} stopped on a non-finite loss: "
            "no complete run to report; rerun them with a lower --learning_rate (search.sh reruns stopped runs)",
            file=sys.stderr,
        )
    else:
        report_best(ranked, metric)

    order = "lowest" if lower else "highest"
    print(f"\nall {len(rows)} runs, by best_eval_{metric} ({order} first):")
    print(format_table(ranked, COLUMNS, metric))
    if any(not r["args_json"] for r in rows):
        print("* no readable args.json: hyper-parameters unknown; ranked after every run with args.json")
    if any(r["stopped"] for r in rows):
        print(
            '! stopped by a non-finite loss (best_results.json "stopped"): the best of the epochs before it; ranked '
            "after every complete run and left out of the means; search.sh runs it again"
        )
    groups = seed_groups(rows, metric)
    if groups:
        print("\nconfigurations run with several seeds (mean ± std, sample std):")
        for g in groups:
            config = " ".join(f"{k}={_fmt(g[k])}" for k in COLUMNS[2:-1] if k != "seed")
            left_out = f"; stopped, left out: seeds {g['stopped']}" if g["stopped"] else ""
            print(f"  {g['mean']:.4f} ± {g['std']:.4f}  (n={g['n']}, seeds {g['seeds']}{left_out})  {config}")

    csv_path = args.csv or os.path.join(scanned, "runs.csv")
    write_csv(csv_path, ranked, metric)
    print(f"\nwrote {csv_path}")
    return 1 if all_stopped else 0


if __name__ == "__main__":
    sys.exit(main())
