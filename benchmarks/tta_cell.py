"""One time-to-accuracy cell: `python benchmarks/tta_cell.py OUT RUN_PY_ARGS...` (started by time_to_accuracy.py).

Runs run.py's main() in this process with PTuningTrainer.train and .evaluate wrapped (as benchmarks/eval_cost.py):
at every dev evaluation during training it records the epoch, dev F1 and the cumulative seconds since train()
began MINUS the time spent in earlier evaluations, i.e. training wall-clock with evaluation excluded. Writes
OUT/cell.json: {"argv", "epochs": [{"epoch", "train_seconds", "eval_seconds", "dev_f1"}], "best", "train_runtime",
"threads"}.
"""

from __future__ import annotations

import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script: `benchmarks.*` and the project's packages import from the root
    sys.path.insert(0, ROOT)


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
    with open(os.path.join(out, "cell.json"), "w") as f:
        json.dump(cell, f, indent=1)
    return cell


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:])
