"""Best-epoch bookkeeping, derived from the Trainer's log history (so a resumed run gets it back for free).

As the original training/trainer_base.py: the best epoch is the one whose dev `main_metric` is strictly greater than
every earlier one (ties keep the earliest), `best_epoch` is 0-based, and the test score recorded is the one measured
at that evaluation (`best_test_<metric>`, or `best_test_<split>_<metric>` for several test splits).
"""

from __future__ import annotations

_TIMINGS = ("_runtime", "_samples_per_second", "_steps_per_second", "_model_preparation_time")


def _metrics(entry: dict, prefix: str) -> dict:
    return {f"best_{k}": v for k, v in entry.items() if k.startswith(prefix) and not k.endswith(_TIMINGS)}


def best_entry(log_history: list[dict], main_metric: str) -> dict | None:
    """The log entry of the best dev evaluation (the first of equal scores), or None before any."""
    key = f"eval_{main_metric}"
    best = None
    for entry in log_history:
        if key in entry and (best is None or entry[key] > best[key]):
            best = entry
    return best


def best_results(log_history: list[dict], main_metric: str) -> dict:
    """{"best_epoch", "best_eval_*" of the best evaluation, "best_test_*" measured at that step} or {}."""
    best = best_entry(log_history, main_metric)
    if best is None:
        return {}
    out = {"best_epoch": int(round(best.get("epoch", 0))) - 1, **_metrics(best, "eval_")}
    for entry in log_history:  # the test scores logged at the same optimizer step
        if entry.get("step") == best.get("step"):
            out.update(_metrics(entry, "test_"))
    return out


def improves(log_history: list[dict], main_metric: str, value: float) -> bool:
    """Whether `value` is strictly better than every dev score logged so far."""
    key = f"eval_{main_metric}"
    return all(value > entry[key] for entry in log_history if key in entry)
