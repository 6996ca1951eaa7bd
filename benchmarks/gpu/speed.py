"""Speed section of benchmarks/gpu_check.py: train and eval steps at roberta-large size (benchmarks/common/spec.py's
ROBERTA_LARGE), per method and precision.

A train step is forward + backward + fused AdamW step + zero_grad (HF Trainer's order and default optimizer), with a
sequence-classification head, dropout 0.1 everywhere (--hidden_dropout_prob 0.1). Precisions as HF Trainer runs them:
  fp32   plain float32 (TF32 left as the machine has it; gpu.json records the flags)
  bf16   torch.autocast(bfloat16), float32 master weights, no loss scaling (--bf16)
  fp16   torch.autocast(float16) + torch.amp.GradScaler (--fp16)
Timing: `warmup` steps (cuBLAS handles, allocator growth, AdamW state creation), then `steps` timed steps, each
between torch.cuda.synchronize() calls; the median is reported. Memory: reset_peak_memory_stats after the warm-up,
max_memory_allocated over the timed steps (weights + grads + optimizer state + activations: the whole footprint).
Eval: model.eval() under torch.no_grad() and the same autocast; "frozen" is the fine-tuning model (backbone + head,
no prefix) in eval, i.e. the bare frozen backbone P-tuning v2 is compared with.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

from benchmarks.common.models import adamw
from benchmarks.common.spec import make_batch
from benchmarks.gpu.models import autocast_for, free, load, save_large, short_error

METHODS = ("finetune", "prefix", "prompt")
PRECISIONS = ("bf16", "fp32", "fp16")  # bf16 first: it carries the memory target


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, warmup: int, steps: int) -> dict:
    """Median wall time of `fn` over `steps` synchronised calls after `warmup` calls; CUDA peak memory of the timed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        resident = torch.cuda.memory_allocated(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync(device)  # kernels are asynchronous: stop the clock only when the GPU is done
        times.append(time.perf_counter() - t0)
    return {
        "ms_median": 1e3 * statistics.median(times),
        "ms_min": 1e3 * min(times),
        "ms_all": [round(1e3 * t, 3) for t in times],
        "resident_bytes": resident if cuda else None,  # weights + optimizer state between steps
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(device) if cuda else None,
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(device) if cuda else None,
    }


def make_train_step(model, batch, device, precision: str):
    """(step function, optimizer, scaler): one HF-Trainer-like step; GradScaler only for fp16."""
    opt = adamw(model, "fused")
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    last = {}

    def step():
        with autocast_for(device, precision):
            loss = model(**batch).loss
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)  # unscales, skips the step on inf/NaN gradients
            scaler.update()
        else:
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)
        last["loss"] = loss.detach()  # no .item() here: it would synchronise inside the timed region

    return step, opt, scaler, last


def train_bench(model, batch, device, precision, warmup, steps) -> dict:
    model.train()
    step, opt, scaler, last = make_train_step(model, batch, device, precision)
    out = timed(step, device, warmup, steps)
    out["samples_per_s"] = batch["input_ids"].shape[0] / (out["ms_median"] / 1e3)
    out["loss"] = float(last["loss"])
    out["grad_scale"] = float(scaler.get_scale()) if scaler is not None else None
    del step, opt, scaler, last
    return out


def eval_bench(model, batch, device, precision, warmup, steps) -> dict:
    model.eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}

    def step():
        with torch.no_grad(), autocast_for(device, precision):
            model(**inputs)

    out = timed(step, device, warmup, steps)
    out["samples_per_s"] = batch["input_ids"].shape[0] / (out["ms_median"] / 1e3)
    return out


# both sides of the memory ratio, so it can be read with checkpointing too
CHECKPOINTED = ("finetune", "prefix")


def input_side(model) -> list:
    """The trainable parameters whose gradient crosses every checkpointed layer: the prefix encoder (P-tuning v2)
    or the input embeddings (fine-tuning)."""
    encoder = getattr(model, "prefix_encoder", None)
    side = encoder if encoder is not None else model.backbone.get_input_embeddings()
    return list(side.parameters())


def checkpointing_check(model, batch, device, precision, warmup, steps) -> dict:
    """One train step with gradient checkpointing (HF Trainer's --gradient_checkpointing surface)."""
    try:
        model.gradient_checkpointing_enable()
        model.train()
        opt = adamw(model, "fused")
        last, grads = {}, {}

        def checked_step():
            with autocast_for(device, precision):
                loss = model(**batch).loss
            loss.backward()
            grads["norm"] = torch.stack([p.grad.norm() for p in input_side(model)]).norm()
            opt.step()
            opt.zero_grad(set_to_none=True)
            last["loss"] = loss.detach()

        out = timed(checked_step, device, warmup, steps)
        loss, norm = float(last["loss"]), float(grads["norm"])
        ok = torch.isfinite(torch.tensor([loss, norm])).all().item() and norm > 0
        return {"pass": bool(ok), "precision": precision, "loss": loss, "input_side_grad_norm": norm, **out}
    except Exception as err:
        return {"pass": False, "precision": precision, "error": short_error(err, 600)}
    finally:
        model.zero_grad(set_to_none=True)


def bf16_backbone_bench(path, spec, device, batch, warmup, steps) -> dict:
    """A P-tuning v2 bf16 train step with --backbone_dtype bfloat16: the frozen backbone never steps, so it needs no
    fp32 master copy (nor autocast's bf16 copy of it); the prefix encoder and the head stay fp32, under bf16 autocast."""
    try:
        model = load(
            path,
            device,
            method="prefix",
            attn="sdpa",
            dropout=0.1,
            scale_prefix=False,
            pre_seq_len=spec.pre_seq_len,
            backbone_dtype="bfloat16",
        )
    except Exception as err:
        return {"error": short_error(err)}
    try:
        return train_bench(model, batch, device, "bf16", warmup, steps)
    except Exception as err:
        return {"error": short_error(err)}
    finally:
        del model
        free(device)


def speed(path, spec, device, budget, warmup, steps, log=print, unit_reserve_s=20.0) -> dict:
    """Every method x precision: train and eval figures, the ratios to fine-tuning, and the checkpointing check.
    The random backbone is saved to `path` (save_large) when the first method fits the budget."""
    batch = make_batch(spec, device=device)
    train = {p: {} for p in PRECISIONS}
    evals = {p: {} for p in PRECISIONS}
    params, leftovers = {}, {}
    checkpointing = {m: {"pass": None, "skipped": "time budget"} for m in CHECKPOINTED}
    for method in METHODS:
        if not budget.allows(unit_reserve_s):
            log(f"  {method}: skipped (time budget)")
            for p in PRECISIONS:
                train[p][method] = {"skipped": "time budget"}
            continue
        try:
            if not os.path.isdir(path):
                save_large(spec, path, device)
            model = load(
                path,
                device,
                method=method,
                attn="sdpa",
                dropout=0.1,
                scale_prefix=False,
                pre_seq_len=spec.pre_seq_len,
            )
        except Exception as err:
            for p in PRECISIONS:
                train[p][method] = {"error": short_error(err)}
            if method in CHECKPOINTED:
                checkpointing[method] = {"pass": False, "error": f"the {method} model did not load"}
            continue
        params[method] = {
            "trainable": model.num_parameters(only_trainable=True),
            "total": model.num_parameters(),
        }
        for precision in PRECISIONS:
            if not budget.allows(unit_reserve_s):
                train[precision][method] = {"skipped": "time budget"}
                continue
            eval_name = "frozen" if method == "finetune" else method
            try:
                train[precision][method] = train_bench(model, batch, device, precision, warmup, steps)
                free(device)
                evals[precision][eval_name] = eval_bench(model, batch, device, precision, warmup, steps)
            except Exception as err:  # e.g. out of memory: report it, keep going
                model.zero_grad(set_to_none=True)
                train[precision].setdefault(method, {"error": short_error(err)})
                evals[precision].setdefault(eval_name, {"error": short_error(err)})
            free(device)
            r = train[precision][method]
            log(
                f"  {method:8} {precision}: train {r.get('ms_median', float('nan')):8.1f} ms/step {r.get('error', '')}"
            )
        if method in CHECKPOINTED and budget.allows(unit_reserve_s):
            checkpointing[method] = checkpointing_check(model, batch, device, PRECISIONS[0], 1, 1)
        del model
        leftovers[method] = free(device)  # what stayed allocated after the method's model was deleted
    ratios = {p: _ratios(train[p], evals[p]) for p in PRECISIONS}
    bf16_backbone = {"skipped": "time budget"}
    if budget.allows(unit_reserve_s):
        log("  prefix with the frozen backbone stored in bf16")
        bf16_backbone = bf16_backbone_bench(path, spec, device, batch, warmup, steps)
        ft = train["bf16"].get("finetune", {})
        for key in ("ms_median", "peak_allocated_bytes"):
            x, y = bf16_backbone.get(key), ft.get(key)
            bf16_backbone[f"{key}_vs_finetune"] = x / y if x and y else None
    for method, record in checkpointing.items():
        without = train[PRECISIONS[0]].get(method, {}).get("peak_allocated_bytes")
        if record.get("peak_allocated_bytes") and without:
            record["peak_vs_without"] = record["peak_allocated_bytes"] / without
    peaks = [checkpointing[m].get("peak_allocated_bytes") for m in CHECKPOINTED]  # CUDA only
    checkpointing["peak_memory_ratio_prefix_vs_finetune"] = peaks[1] / peaks[0] if all(peaks) else None
    return {
        "config": spec.__dict__,
        "optimizer": "torch.optim.AdamW(fused=True), lr 1e-5, weight_decay 0",
        "warmup_steps": warmup,
        "timed_steps": steps,
        "parameters": params,
        "train": train,
        "eval": evals,
        "ratios": ratios,
        "allocated_after_delete_bytes": leftovers,
        "gradient_checkpointing": checkpointing,
        "bf16_backbone": bf16_backbone,
    }


def _ratios(train: dict, evals: dict) -> dict:
    def ratio(a, b, key):
        x, y = a.get(key), b.get(key)
        return x / y if x is not None and y else None

    ft, frozen = train.get("finetune", {}), evals.get("frozen", {})
    out = {}
    for method in ("prefix", "prompt"):
        out[f"step_ratio_{method}_vs_finetune"] = ratio(train.get(method, {}), ft, "ms_median")
        out[f"peak_memory_ratio_{method}_vs_finetune"] = ratio(
            train.get(method, {}), ft, "peak_allocated_bytes"
        )
        out[f"eval_throughput_ratio_{method}_vs_frozen"] = ratio(
            evals.get(method, {}), frozen, "samples_per_s"
        )
    return out
