"""Timing for benchmarks/speed.py: one train or eval step, round-robin scheduling of many variants, medians and ratios.

Variants are timed round-robin (warm-up + timed steps per variant per round, the order rotated every round), so
machine load hits all of them alike; ratios are given as ratio of medians and as the median of per-round ratios.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time

import torch


@contextlib.contextmanager
def torch_threads(n: int):
    """torch.set_num_threads(n) inside the block; callers in the same process (tests) get their setting back."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_step(model, opt, batch) -> dict:
    """One forward + backward + AdamW step + zero_grad; wall and CPU ms of the step and wall ms of each phase."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    loss = model(**batch).loss
    wall1 = time.perf_counter()
    loss.backward()
    wall2 = time.perf_counter()
    opt.step()
    opt.zero_grad(set_to_none=True)  # HF Trainer's order: step, then zero_grad
    wall3, cpu3 = time.perf_counter(), time.process_time()
    return {
        "ms": 1e3 * (wall3 - wall0),
        "cpu_ms": 1e3 * (cpu3 - cpu0),
        "forward_ms": 1e3 * (wall1 - wall0),
        "backward_ms": 1e3 * (wall2 - wall1),
        "optimizer_ms": 1e3 * (wall3 - wall2),
    }


def eval_step(model, batch) -> dict:
    """One forward under torch.no_grad(), labels dropped; wall and CPU ms."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        model(**inputs)
    return {"ms": 1e3 * (time.perf_counter() - wall0), "cpu_ms": 1e3 * (time.process_time() - cpu0)}


def round_robin(jobs: dict, rounds: int, warmup: int, steps: int, log=print) -> dict:
    """jobs: name -> zero-argument callable doing one step and returning its timings. Returns name -> rounds of
    timed samples. Every round runs warmup + steps of each job in turn; the order rotates by one every round."""
    names = list(jobs)
    samples: dict = {name: [] for name in names}
    gc.collect()
    gc.freeze()  # what is alive now (models, modules) is never scanned again, so the collects below stay cheap
    try:
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                for _ in range(warmup):
                    jobs[name]()
                gc.collect()
                gc.disable()  # no collector pause inside a timed step
                try:
                    samples[name].append([jobs[name]() for _ in range(steps)])
                finally:
                    gc.enable()
            times = ", ".join(f"{n} {_median(samples[n][-1], 'ms'):.0f}" for n in names)
            log(f"  round {r + 1}/{rounds} (load {os.getloadavg()[0]:.1f}) ms: {times}")
    finally:
        gc.unfreeze()
    return samples


def _median(rows: list, key: str) -> float:
    return statistics.median(row[key] for row in rows)


def summarize(rounds_of_samples: list) -> dict:
    """<key>_median over every timed step, ms_min, the per-round medians of ms and the sample count."""
    flat = [s for block in rounds_of_samples for s in block]
    out = {f"{k}_median": _median(flat, k) for k in flat[0]}
    out["ms_min"] = min(s["ms"] for s in flat)
    out["ms_round_medians"] = [_median(block, "ms") for block in rounds_of_samples]
    out["n_samples"] = len(flat)
    return out


def paired_ratio(a: dict, b: dict) -> dict:
    """a/b step time: ratio of the overall medians, plus the median/min/max of per-round ratios."""
    per_round = [x / y for x, y in zip(a["ms_round_medians"], b["ms_round_medians"], strict=True)]
    return {
        "ratio_of_medians": a["ms_median"] / b["ms_median"],
        "cpu_ratio_of_medians": a["cpu_ms_median"] / b["cpu_ms_median"],
        "per_round_median": statistics.median(per_round),
        "per_round_min": min(per_round),
        "per_round_max": max(per_round),
    }
