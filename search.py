"""Rank the configurations of a hyper-parameter search by their mean over seeds; tabulate and plot its runs.

    python search.py copa roberta                     # metric: the task's main metric
    python search.py rte roberta accuracy --root checkpoints --csv rte.csv
    python search.py conll2004 minilm test_f1         # by the test score: for reporting, select on dev

As the original, it reads `<root>/<DATASET>-<MODEL>-search/*/best_results.json` and ranks by `best_eval_<METRIC>`
(default: the task's main metric, tasks/registry.py; losses and runtime are minimised; METRIC `test_<m>`:
best_test_<m>). Unlike the original, a configuration is every result-changing argument a run's args.json records but
the seed (training/flags.py), and configurations are ranked by their mean over seeds (ties: more seeds, then path
order): the headline is the best one (mean ± std, n), then its best seed's value, results, path and hyper-parameters.
A table of configurations and one of runs follow, with the test score (best_test_<METRIC>) when recorded and a column
for every flag that varies; the runs go to a CSV (default `<search folder>/runs.csv`) and, when a flag varies, an SVG
beside it plots the metric against each (training/sweep_report.py). Without the search folder, the runs under `--root`
whose args.json names DATASET and a backbone MODEL names (training/run_records.py) are ranked, else exit 1. Marked,
ranked last, never the headline nor in a mean: `*` no readable args.json, `!` stopped by a non-finite loss.

For search_script/search.sh: `search.py --same-args RUN_DIR -- RUN.PY FLAGS...` exits 0 when run.py's own parser
turns FLAGS into the result-changing arguments RUN_DIR/args.json recorded (training/flags.py), 1 with the
differences, 3 without a readable args.json; `search.py --finished RUN_DIR` exits 0 for a complete run, else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys

from training.flags import sweep_differences
from training.run_records import (  # noqa: F401  (backbone, tag_matches: search.<name> in tests)
    HPARAMS,
    NAMED,
    available_metrics,
    backbone,
    companion_columns,
    configuration,
    configurations,
    find_run_dirs,
    flag_value,
    hyperparameters,
    is_metric_number,
    lower_is_better,
    not_finite_reason,
    rank,
    read_args,
    read_json,
    result_key,
    same_value_key,
    score,
    stopped_reason,
    swept_flags,
    tag_matches,
    warn,
)
from training.sweep_report import configs_table, fmt, mean_std, run_columns, runs_table, write_csv, write_plot


def default_metric(dataset: str, run_args: dict | None) -> str:
    """The registry's main metric for the run's task (tasks/ is light: no model, no transformers). Without
    args.json: the main metric of the datasets named `dataset` in any family, if they agree; else "f1"."""
    from tasks import registry

    data_args = (run_args or {}).get("data_args", {})
    family, name = data_args.get("task_name"), data_args.get("dataset_name", dataset)
    if isinstance(family, str) and family and isinstance(name, str):
        try:  # your own data: the task its recorded labels build (a regression file ranks by pearson)
            task = registry.get_task(family, name)
            own = data_args.get("own_data")
            return (task.from_record({"own_data": own}) if own and task.own_data else task).main_metric
        except ValueError as e:  # args.json of a task this checkout does not register
            warn(f"{e}; ranking by the main metric of the datasets named {dataset!r}")
    metrics = {
        registry.get_task(fam, dataset).main_metric
        for fam in registry.FAMILIES
        if dataset in registry.dataset_names(fam)
    }
    return metrics.pop() if len(metrics) == 1 else "f1"


def load_runs(run_dirs: list[str], scanned: str, dataset: str, metric: str | None) -> tuple[str, list[dict]]:
    """(metric, one row per rankable run, in path order); a run is named by its path relative to `scanned`, its
    "flags" are its configuration (run_records.configuration; {} without args.json) and "config" their key."""
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
    key = result_key(metric)
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
        flags = configuration(run_args) if run_args is not None else {}
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
                "flags": flags,
                "config": same_value_key(flags) if run_args is not None else None,
                "config_no": None,  # its configuration's place in the ranking, once ranked
            }
        )
    return metric, rows


def run_payload(flags: list[str]) -> dict:
    """The args.json payload run.py records for the run.py command line `flags` (--output_dir may be left out),
    parsed by run.py's own parser (search.py --same-args). ValueError (one line) when run.py would refuse them."""
    from arguments import args_payload, get_args  # run.py's own parser (imports transformers)
    from tasks import get_task

    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            parsed = get_args(list(flags))
    except SystemExit:  # get_args: one usage line, then exit 2
        reason = (usage.getvalue().strip().splitlines() or ["unknown"])[-1].partition("error: ")[2]
        raise ValueError(f"run.py refuses these flags: {reason or usage.getvalue().strip()}") from None
    data_args = parsed[1]  # your own data: resolved to its labels, as run.py does
    task = get_task(data_args.task_name, data_args.dataset_name).resolve(data_args)
    return json.loads(json.dumps(args_payload(*parsed, task=task), default=str))


def args_differences(run_dir: str, flags: list[str]) -> list[str] | None:
    """How run_dir/args.json differs from the run that the run.py command line `flags` would start, parsed by
    run.py's own parser and compared by the resume rule plus what the sweep scores (training/flags.py); one line each,
    [] = the same run, None when args.json is missing or unreadable. Imports run.py's arguments (transformers)."""
    try:
        recorded = read_args(run_dir)
    except (OSError, ValueError):
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


def report_best(
    ranked: list[dict], configs: list[dict], metric: str, companions: dict, extra: list[str]
) -> None:
    """The headline: the best configuration (mean ± std, n, seeds, the companion scores' means), then its best seed
    (`best_<metric>`: its value, results, path and hyper-parameters); ties; the single runs that scored better
    (of another configuration, without args.json, or stopped). Without a configuration (no complete run has
    args.json): the best run."""
    lower = lower_is_better(metric)
    if configs:
        top = configs[0]
        best = top["best"]
        seeds = " ".join(fmt(r["seed"]) for r in top["runs"])
        scores = "".join(
            f"; {h} {mean_std([score(r, k) for r in top['runs']])}" for h, k in companions.items()
        )
        print(
            f"best configuration, by mean {metric} over seeds: {mean_std([r['metric'] for r in top['runs']])} "
            f"(n={top['n']}, seeds {seeds}){scores}"
        )
    else:
        best = ranked[0]
        print("best configuration: unknown (no complete run has a readable args.json); the best run:")
    print(f"best_{metric}: {best['metric']}")
    print(json.dumps(best["results"]))
    print(os.path.join(best["path"], "best_results.json"))
    names = [*HPARAMS, *extra, *NAMED]
    print(
        "hyper-parameters (args.json): "
        + " ".join(f"{n}={fmt(flag_value(best, n) if n in extra else best[n])}" for n in names)
    )
    if not best["args_json"]:
        which = "no complete run" if any(r["args_json"] for r in ranked) else "no run"
        warn(f"{which} has a readable args.json: the best run's hyper-parameters ({best['run']}) are unknown")
    if configs:
        tied = [c for c in configs if c["mean"] == top["mean"] and c["n"] == top["n"]]
        if len(tied) > 1:
            print(
                f"tie: {len(tied)} configurations share the best mean with as many seeds (their best runs: "
                f"{', '.join(c['best']['run'] for c in tied)}); the first in path order is reported"
            )
        same = [r["run"] for r in top["runs"] if r["metric"] == best["metric"]]
    else:
        same = [
            r["run"]
            for r in ranked
            if r["metric"] == best["metric"] and not r["args_json"] and not r["stopped"]
        ]
    if len(same) > 1:
        print(
            f"tie: {len(same)} runs share the best value ({', '.join(same)}); the first in path order is reported"
        )
    sign = 1 if lower else -1
    better = [r for r in ranked if sign * r["metric"] < sign * best["metric"]]
    alone = [r for r in better if r["args_json"] and not r["stopped"]]
    if alone:
        run = min(alone, key=lambda r: sign * r["metric"])
        print(
            f"a single run scored better: {run['run']} ({run['metric']}), one seed of configuration "
            f"#{run['config_no']}; configurations are ranked by their mean over seeds"
        )
    if configs and top["n"] == 1 and any(c["n"] > 1 for c in configs):
        warn(
            "the best configuration was run with one seed: its mean is one run; run more seeds of it to confirm"
        )
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
        help="rank by best_eval_<METRIC> (default: the task's main metric), or by best_test_<m> for test_<m> (for "
        "reporting; select on dev); losses and runtime are minimised",
    )
    parser.add_argument("--root", default="checkpoints", help="folder holding <DATASET>-<MODEL>-search/")
    parser.add_argument(
        "--csv",
        help="where to write the runs (default: <search folder>/runs.csv); the plot goes beside it (.svg)",
    )
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
    key = result_key(metric)
    if not rows:
        present = available_metrics(run_dirs)
        if present:  # results exist, only not for this metric
            print(
                f"error: no run of {args.dataset}-{args.model} under {scanned} has {key}; the runs "
                f"have: {', '.join(present)} (e.g. `python search.py {args.dataset} {args.model} {present[0]}`)",
                file=sys.stderr,
            )
        else:
            print(
                f"error: no run of {args.dataset}-{args.model} with {key} under {scanned} "
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
        warn(f"{metric} is lower-is-better: the smallest {key} is reported")
    if metric.startswith("test_"):
        warn(
            f"ranking by {key}, a test score: report it, but choose hyper-parameters by a dev score (best_eval_*)"
        )
    configs = configurations(rows, metric)  # complete runs with args.json, by their mean over seeds
    for number, config in enumerate(configs, 1):
        for run in config["runs"] + config["stopped"]:
            run["config_no"] = number
    ranked = rank(rows, metric, configs)  # by configuration, then runs without args.json, then stopped runs
    companions = companion_columns(metric, [r["results"] for r in rows])
    swept = swept_flags(rows)
    extra = [n for n in swept if n not in HPARAMS and n not in NAMED]
    all_stopped = ranked[0]["stopped"] is not None
    if all_stopped:  # never a headline: the table below still lists them
        print(
            f"error: every run of {args.dataset}-{args.model} with {key} stopped on a non-finite loss: "
            "no complete run to report; rerun them with a lower --learning_rate (search.sh reruns stopped runs)",
            file=sys.stderr,
        )
    else:
        report_best(ranked, configs, metric, companions, extra)

    order = "lowest" if lower else "highest"
    if configs:
        left_out = "; seed! stopped: left out" if any(c["stopped"] for c in configs) else ""
        print(f"\nconfigurations ({len(configs)}), by mean {key} over seeds ({order} first{left_out}):")
        print(configs_table(configs, companions, extra))
    print(f"\nall {len(rows)} runs, by configuration (config: its # above), then by {key} ({order} first):")
    columns = run_columns(metric, companions, extra)
    print(runs_table(ranked, columns))
    if any(not r["args_json"] for r in rows):
        print("* no readable args.json: hyper-parameters unknown; ranked after every run with args.json")
    if any(r["stopped"] for r in rows):
        print(
            '! stopped by a non-finite loss (best_results.json "stopped"): the best of the epochs before it; ranked '
            "after every complete run and left out of the means; search.sh runs it again"
        )

    csv_path = args.csv or os.path.join(scanned, "runs.csv")
    write_csv(csv_path, ranked, columns)
    print(f"\nwrote {csv_path}")
    if swept and configs:  # something varies: the metric against each swept flag
        svg_path = os.path.splitext(csv_path)[0] + ".svg"
        title = f"{args.dataset}-{args.model}: {key} per swept flag ({sum(c['n'] for c in configs)} runs)"
        write_plot(svg_path, title, key, configs, swept)
        print(f"wrote {svg_path}")
    return 1 if all_stopped else 0


if __name__ == "__main__":
    sys.exit(main())
