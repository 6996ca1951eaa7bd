"""Memory for benchmarks/speed.py: exact byte counts of one training step, and the peak RSS of a variant run alone.

The byte counts are not a profiler: parameters, gradients after backward, AdamW state after one step (exp_avg +
exp_avg_sq; the scalar `step` tensors are listed apart), and the activations autograd saves for backward (every
tensor passed to torch.autograd.graph.saved_tensors_hooks in one training forward, counted once per storage,
parameter and buffer storages excluded). train_memory = the sum; transient buffers inside backward are not in it.
The RSS worker runs one variant in a fresh interpreter (`python -m benchmarks.speed --rss-worker REQUEST`) and reports its peak RSS
(VmHWM) and its RSS just before building the model (a tiny throwaway model has paid the lazy imports by then).
"""

from __future__ import annotations

import gc
import json
import subprocess
from dataclasses import asdict

import torch

from benchmarks.common.process import json_child, proc_status_kib
from benchmarks.common.spec import TINY, Spec, make_batch
from benchmarks.cpu.timing import eval_step, train_step
from benchmarks.cpu.variants import build, clear_backbones


def _storage_key(t: torch.Tensor) -> tuple[int, int]:
    s = t.untyped_storage()
    return s.data_ptr(), s.nbytes()


def measure_memory(model, opt, batch) -> dict:
    """Byte counts of one training step (see the module docstring). Leaves the model's grads cleared."""
    params = list(model.parameters())
    fixed = {_storage_key(t)[0] for t in [*params, *model.buffers()]}
    saved: dict[int, int] = {}

    def pack(t):
        ptr, nbytes = _storage_key(t)
        if ptr not in fixed:
            saved[ptr] = max(saved.get(ptr, 0), nbytes)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(**batch).loss
    loss.backward()
    grad_bytes = sum(p.grad.nbytes for p in params if p.grad is not None)
    opt.step()
    state = [opt.state[p] for p in opt.param_groups[0]["params"] if p in opt.state]
    moments = sum(st[k].nbytes for st in state for k in ("exp_avg", "exp_avg_sq"))
    step_bytes = sum(st["step"].nbytes for st in state if torch.is_tensor(st.get("step")))
    opt.zero_grad(set_to_none=True)
    param_bytes = sum(p.nbytes for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    activations = sum(saved.values())
    return {
        "trainable_params": trainable,
        "total_params": sum(p.numel() for p in params),
        "param_bytes": param_bytes,
        "grad_bytes": grad_bytes,
        "optimizer_state_bytes": moments,
        "optimizer_step_counter_bytes": step_bytes,
        "saved_activation_bytes": activations,
        "train_memory_bytes": param_bytes + grad_bytes + moments + activations,
    }


def rss_in_subprocess(spec: Spec, variant: str, optim: str) -> dict:
    """Peak RSS of one variant run alone (2 steps) in a fresh interpreter; {"error": ...} if it fails."""
    request = json.dumps(
        {"spec": asdict(spec), "variant": variant, "optim": optim, "threads": torch.get_num_threads()}
    )
    try:
        return json_child("benchmarks.speed", ["--rss-worker", request], timeout=600)
    except (subprocess.SubprocessError, ValueError, IndexError) as err:
        return {"error": str(err)[-300:]}


def _vm(field: str) -> float:
    kib = proc_status_kib(field)
    return float("nan") if kib is None else kib / 1024  # MiB


def rss_worker(request: str) -> None:
    """The subprocess side of rss_in_subprocess: prints one JSON line of MiB figures."""
    req = json.loads(request)
    torch.set_num_threads(req["threads"])
    spec, variant = Spec(**req["spec"]), req["variant"]
    batch = make_batch(spec)
    build(TINY, variant, optim=req["optim"])  # pays the lazy imports (modeling code) before the baseline
    gc.collect()
    before = _vm("VmRSS")
    model, opt = build(spec, variant, optim=req["optim"])
    clear_backbones()  # the template copy is not part of the variant's footprint
    gc.collect()
    for _ in range(2):
        train_step(model, opt, batch) if opt is not None else eval_step(model, batch)
    peak = _vm("VmHWM")
    print(
        json.dumps(
            {"rss_before_model_mib": before, "rss_peak_mib": peak, "rss_peak_delta_mib": peak - before}
        )
    )
