"""One time-to-accuracy cell, and running the unfinished cells of an order (started by time_to_accuracy.py).

`python -m benchmarks.tta.cell OUT RUN_PY_ARGS...` runs run.py's main() in this process with PTuningTrainer.train and
.evaluate wrapped (as benchmarks/eval_cost.py): at every dev evaluation during training it records the epoch, dev F1
and the cumulative seconds since train() began MINUS the time spent in earlier evaluations, i.e. training wall-clock
with evaluation excluded. Writes OUT/cell.json: {"argv", "epochs": [{"epoch", "train_seconds", "eval_seconds",
"dev_f1"}], "best", "train_runtime", "threads"}. A cell whose cell.json holds the same argv is finished: run_cells
skips it; one whose argv changed is run afresh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchmarks.common.output import write_json
from benchmarks.paths import ROOT
from benchmarks.tta.grid import Grid, cell_dir, to_flags
from benchmarks.tta.report import load_cell


def run(out: str, argv: list[str]) -> dict:
    import torch

    import run as run_py
    from training.trainer import PTuningTrainer

    clock = {"start": None, "eval": 0.0}
    epochs: list[dict] = []
    train, evaluate = PTuningTrainer.train, PTuningTrainer.evaluate

    def timed_train(self, *args, **kwargs):
        clock["start"], clock["eval"] = time.perf_counter(), 0.0
        return train(self, *args, **kwargs)

    def timed_evaluate(self, *args, **kwargs):
        prefix = kwargs.get("metric_key_prefix", args[2] if len(args) > 2 else "eval")
        if not (self._training and prefix == "eval" and clock["start"] is not None):
            return evaluate(self, *args, **kwargs)
        begin = time.perf_counter()
        trained = begin - clock["start"] - clock["eval"]
        metrics = evaluate(self, *args, **kwargs)
        seconds = time.perf_counter() - begin
        clock["eval"] += seconds
        f1 = metrics.get(f"eval_{self.task.main_metric}")
        epochs.append({"epoch": round(self.state.epoch or 0), "train_seconds": round(trained, 3),
                       "eval_seconds": round(seconds, 3), "dev_f1": None if f1 is None else 100 * f1})  # fmt: skip
        return metrics

    PTuningTrainer.train, PTuningTrainer.evaluate = timed_train, timed_evaluate
    try:
        results = run_py.main(argv)
    finally:  # in-process callers (tests) get the class back unchanged
        PTuningTrainer.train, PTuningTrainer.evaluate = train, evaluate
    with open(os.path.join(out, "best_results.json")) as f:
        best = json.load(f)
    cell = {
        "argv": argv,
        "epochs": epochs,
        "best": best,
        "train_runtime": results.get("train_runtime"),
        "trainable_params": results.get("trainable_params"),
        "threads": torch.get_num_threads(),
    }
    write_json(os.path.join(out, "cell.json"), cell)
    return cell


def run_cells(grid: Grid, order, runs: str, model: str, env=None, in_process: bool = False,
              epochs: int | None = None) -> None:  # fmt: skip
    """Run the unfinished cells of `order` (grid.cells), each in a subprocess (in_process: in this one, for tests)."""
    for dataset, variant, seed in order:
        out = cell_dir(runs, dataset, variant, seed, epochs)
        argv = grid.cell_argv(dataset, variant, seed, model, out, epochs=epochs)
        if argv is None:
            print(
                f"[tta] {dataset} {variant} seed {seed}: waits for BEST (fill it in the script)", flush=True
            )
            continue
        done = load_cell(out)
        if done is not None and done.get("argv") == argv:
            continue
        if done is not None:
            print(f"[tta] {dataset} {variant} seed {seed}: flags changed, running afresh", flush=True)
            os.remove(os.path.join(out, "cell.json"))  # the report must not mix the old flags' records in
        print(f"[tta] {dataset} {variant} seed {seed} ...", flush=True)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "options.txt"), "w") as f:  # the variant's own flags, for the report
            f.write(to_flags(grid.cell_options(dataset, variant, epochs=epochs)) + "\n")
        if in_process:
            run(out, argv)
            continue
        with open(os.path.join(out, "log.txt"), "w") as log:
            code = subprocess.call(
                [sys.executable, "-m", "benchmarks.tta.cell", out, *argv],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **os.environ, **(env or {})},
            )
        if code != 0:
            raise SystemExit(f"[tta] cell failed ({code}): see {out}/log.txt")


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:])
