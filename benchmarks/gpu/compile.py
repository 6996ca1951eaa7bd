"""torch.compile check (section 4 of benchmarks/gpu_check.py), in a child process so that a hang or a crash
costs only its timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch

from benchmarks.common.spec import Spec, make_batch
from benchmarks.gpu.models import load, short_error
from benchmarks.gpu.speed import make_train_step, sync, timed
from benchmarks.paths import ROOT


def compile_check(path: str, spec: Spec, device, backend: str, budget, min_s: float) -> dict:
    """torch.compile of a P-tuning v2 model in a child (`python -m benchmarks.gpu_check --compile-worker`) with a timeout from
    `budget` (gpu_check.Budget); skipped when less than min_s would be left."""
    layers = min(4, spec.layers)
    timeout = min(budget.left() - 10, 180)
    record = {"backend": backend, "layers": layers, "precision": "bf16"}
    if timeout < min_s:
        return {**record, "pass": None, "skipped": "time budget"}
    if not os.path.isdir(path):
        return {**record, "pass": None, "skipped": "no saved backbone (the speed section did not run)"}
    request = {
        "path": path,
        "spec": spec.__dict__,
        "device": str(device),
        "backend": backend,
        "layers": layers,
        "threads": torch.get_num_threads(),
    }
    cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--compile-worker", json.dumps(request)]
    t0 = time.monotonic()
    # a session of its own, so that a timeout also ends the compile workers inductor starts
    child = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=ROOT
    )
    try:
        stdout, stderr = child.communicate(timeout=timeout)
        lines = stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
        if result is None:
            tail = (stderr or stdout).strip().splitlines()[-3:]
            result = {"pass": False, "error": f"exit {child.returncode}: " + " | ".join(tail)[-600:]}
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        result = {"pass": False, "error": f"timeout after {timeout:.0f} s"}
    return {**record, **result, "wall_s": time.monotonic() - t0}


def compile_worker(request: str) -> None:
    """Child: eager steps, then torch.compile(model) steps of a P-tuning v2 model; prints one JSON line."""
    req = json.loads(request)
    device, spec = torch.device(req["device"]), Spec(**req["spec"])
    torch.set_num_threads(req["threads"])
    out: dict = {"pass": False}
    try:
        from torch._dynamo.utils import counters

        model = load(
            req["path"],
            device,
            attn="sdpa",
            dropout=0.1,
            scale_prefix=False,
            pre_seq_len=spec.pre_seq_len,
            config_kw={"num_hidden_layers": req["layers"]},
        ).train()
        batch = make_batch(spec, device=device)
        step, *_ = make_train_step(model, batch, device, "bf16")
        out["eager_ms_median"] = timed(step, device, 1, 3)["ms_median"]
        compiled = torch.compile(model, backend=req["backend"])
        step, _, _, last = make_train_step(compiled, batch, device, "bf16")
        t0 = time.perf_counter()
        step()
        sync(device)
        out["first_step_s"] = time.perf_counter() - t0  # tracing + compiling + one step
        out["compiled_ms_median"] = timed(step, device, 1, 3)["ms_median"]
        out["speedup_vs_eager"] = out["eager_ms_median"] / out["compiled_ms_median"]
        breaks = counters.get("graph_break", {})
        out["graph_breaks"] = int(sum(breaks.values()))
        # > 1: a break or a recompile
        out["graphs_compiled"] = int(counters.get("stats", {}).get("unique_graphs", 0))
        out["graph_break_reasons"] = [
            str(k)[:200] for k, _ in sorted(breaks.items(), key=lambda kv: -kv[1])[:3]
        ]
        out["loss"] = float(last["loss"])
        out["pass"] = bool(torch.isfinite(last["loss"]).item())
    except Exception as err:
        out["error"] = short_error(err, 600)
    print(json.dumps(out))
