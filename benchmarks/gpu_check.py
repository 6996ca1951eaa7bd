"""A GPU check that answers issue 15 in one run of under four minutes: is P-tuning v2 right, fast and small on CUDA?

Run (from the repository root, one CUDA GPU; no downloads: every model is random weights from a config):
    python -m benchmarks.gpu_check                              # <= 4 min -> benchmarks/results/gpu.json + a table
    python -m benchmarks.gpu_check --smoke                      # the same code path on CPU, tiny sizes, seconds
                                                                # -> $TMPDIR/gpu_check_smoke.json (never gpu.json)

Sections, in order, each written to the JSON as soon as it is done (a run killed at the limit keeps what it did):
  1. correctness (benchmarks/gpu/correctness.py): the hand-written reference encoder vs the model built by
     get_model, BERT, RoBERTa and DeBERTa-v2, eager and SDPA, positions shifted and not, a padded row; fp32 and
     bf16 autocast.
  2. sdpa_backends (benchmarks/gpu/sdpa.py): which SDPA kernel the dispatcher picks with the prefix mask and
     without, and which run alone.
  3. speed (benchmarks/gpu/speed.py): roberta-large size (24 x 1024, 16 heads, FFN 4096), B=32, T=128, P=128 as
     run_script/run_rte_roberta.sh; fine-tuning / P-tuning v2 / prompt tuning x fp32 / bf16 / fp16+GradScaler:
     ms per train step, samples/s, peak memory, ratios to fine-tuning, eval throughput vs the frozen backbone;
     then one step with gradient checkpointing each for fine-tuning and P-tuning v2 (their memory ratio again),
     and P-tuning v2 with the frozen backbone stored in bf16 (bf16_backbone).
  4. compile (benchmarks/gpu/compile.py): torch.compile of the P-tuning v2 model (4 layers of the same width), in a
     subprocess with a timeout.
A global budget (--budget-s, counted from start) skips what would not fit and records it as skipped.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import tempfile
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
START = time.monotonic()  # the command line counts its imports in the budget too

import torch  # noqa: E402
import transformers  # noqa: E402

from benchmarks.common.output import write_json  # noqa: E402
from benchmarks.common.spec import ROBERTA_LARGE, ROBERTA_SMOKE  # noqa: E402
from benchmarks.gpu.compile import compile_check, compile_worker  # noqa: E402
from benchmarks.gpu.correctness import correctness  # noqa: E402
from benchmarks.gpu.models import short_error  # noqa: E402
from benchmarks.gpu.sdpa import sdpa_probe  # noqa: E402
from benchmarks.gpu.speed import CHECKPOINTED, speed  # noqa: E402
from benchmarks.paths import RESULTS  # noqa: E402

DEFAULT_OUT = os.path.join(RESULTS, "gpu.json")  # the committed GPU results
SMOKE_OUT_NAME = "gpu_check_smoke.json"  # --smoke without --out: in the system temp folder
MEMORY_TARGET = 0.5  # P-tuning v2 peak memory <= 0.5 x fine-tuning's, roberta-large size, bf16


class Budget:
    """Seconds left of the run's budget, counted from `started` (time.monotonic())."""

    def __init__(self, seconds: float, started: float):
        self.seconds, self.started = seconds, started

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def allows(self, need_s: float) -> bool:
        return self.left() >= need_s


def environment(device) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch deprecates reading allow_tf32
        flags = {
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "matmul_fp32_precision": getattr(torch.backends.cuda.matmul, "fp32_precision", None),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        }
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "numerics": flags,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu_name=props.name,
            capability=f"{props.major}.{props.minor}",
            gpu_memory_bytes=props.total_memory,
            multiprocessors=props.multi_processor_count,
            sdp_enabled={  # the global switches; a missing one (older torch) reads None
                k: getattr(torch.backends.cuda, f"{k}_sdp_enabled", lambda: None)()
                for k in ("flash", "mem_efficient", "cudnn", "math")
            },
        )
    return info


# -- the run --------------------------------------------------------------------------------------------------------
def targets(result: dict) -> dict:
    corr = result.get("correctness", {})
    ratios = result.get("speed", {}).get("ratios", {})
    mem = ratios.get("bf16", {}).get("peak_memory_ratio_prefix_vs_finetune")
    steps = {p: r.get("step_ratio_prefix_vs_finetune") for p, r in ratios.items()}
    return {
        "fp32_reference_equality": {"value": corr.get("all_pass_fp32"), "pass": corr.get("all_pass_fp32")},
        "bf16_peak_memory_ratio_prefix_vs_finetune": {
            "value": mem,
            "target": f"<= {MEMORY_TARGET}",
            "pass": None if mem is None else bool(mem <= MEMORY_TARGET),  # None: not measured (CPU)
        },
        "step_ratio_prefix_vs_finetune_reported": {
            "value": steps,
            "pass": bool(steps) and all(v is not None for v in steps.values()),
        },
    }


def write(result: dict, out: str, budget: Budget, section: str | None = None) -> None:
    """Save what is done so far; `section` records the run's clock when that section ended."""
    result["wall_s"] = budget.elapsed()
    if section:
        result.setdefault("section_end_s", {})[section] = round(result["wall_s"], 1)
    write_json(out, result)


def run(smoke: bool, out: str, budget_s: float, warmup: int, steps: int, started: float, log=print) -> dict:
    if not smoke and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_check: no CUDA device here; run it on a GPU machine, or use --smoke for the CPU path"
        )
    device = torch.device("cpu" if smoke else "cuda")
    spec = ROBERTA_SMOKE if smoke else ROBERTA_LARGE
    budget = Budget(budget_s, started)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    result: dict = {
        "mode": "smoke (CPU, tiny sizes)" if smoke else "gpu",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "environment": environment(device),
        "budget_s": budget_s,
        "skipped": [],
    }
    root = tempfile.mkdtemp(prefix="gpu-check-")
    # the speed model's random backbone, saved by speed() when it is reached
    path = os.path.join(root, "large")

    def section(name: str, title: str, fn) -> None:
        """Run one section; an exception is recorded as its result (the script never stops half-way)."""
        log(title)
        try:
            result[name] = fn()
        except Exception as err:
            result[name] = {"error": short_error(err, 600)}
            log(f"  {name} failed: {result[name]['error']}")
        write(result, out, budget, name)

    reserve = 0 if smoke else 20  # seconds a speed unit needs; the compile child is given what is left
    backend = "aot_eager" if smoke else "inductor"  # smoke: dynamo + AOTAutograd, no C++/Triton codegen
    try:
        section(
            "correctness",
            f"== 1. correctness on {device} (relative error vs float64)",
            lambda: correctness(root, device, log),
        )
        if budget.allows(3 * reserve):
            section("sdpa_backends", "== 2. SDPA kernels", lambda: sdpa_probe(root, device, log))
        else:
            result["skipped"].append("sdpa_backends")
        title = f"== 3. speed and memory: {spec.name}, B={spec.batch} T={spec.seq_len} P={spec.pre_seq_len}"
        section("speed", title, lambda: speed(path, spec, device, budget, warmup, steps, log, reserve))
        section(
            "compile",
            "== 4. torch.compile with the prefix (child process)",
            lambda: compile_check(path, spec, device, backend, budget, min_s=2 * reserve),
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    # nothing above may change them
    result["environment"]["numerics_at_end"] = environment(device)["numerics"]
    result["skipped"] += _skipped(result)
    result["targets"] = targets(result)
    write(result, out, budget)
    report(result, log)
    log(f"\nwrote {out} ({result['wall_s']:.0f} s)")
    return result


def _skipped(result: dict) -> list:
    sp = result.get("speed", {})
    names = [
        f"speed/{p}/{m}" for p, row in sp.get("train", {}).items() for m, r in row.items() if "skipped" in r
    ]
    checkpointed = sp.get("gradient_checkpointing", {})
    names += [f"gradient_checkpointing/{m}" for m in CHECKPOINTED if checkpointed.get(m, {}).get("skipped")]
    if sp.get("bf16_backbone", {}).get("skipped"):
        names.append("bf16_backbone")
    if result.get("compile", {}).get("skipped"):
        names.append("compile")
    return names


def _gib(n) -> str:
    return f"{n / 2**30:8.2f}" if n is not None else f"{'-':>8}"


def _f(x, fmt=".3f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "-"


def report(result: dict, log=print) -> None:
    """The readable summary: environment, correctness, SDPA kernels, the speed table, the checks, the targets."""
    env, corr, sp = result["environment"], result.get("correctness", {}), result.get("speed", {})
    log(
        f"\n{env.get('gpu_name', env['device'])} | torch {env['torch']} | CUDA {env['cuda']} | transformers "
        f"{env['transformers']} | TF32 matmul {env['numerics']['matmul_allow_tf32']}"
    )
    for name in ("correctness", "sdpa_backends", "speed", "compile"):
        if "error" in result.get(name, {}) and name != "compile":
            log(f"{name}: FAILED TO RUN: {result[name]['error']}")
    for p in ("fp32", "bf16"):
        cases = [c for c in corr.get("cases", []) if c.get("precision", p) == p]
        worst = max((c.get("rel_err", float("inf")) for c in cases), default=float("nan"))
        log(
            f"correctness {p}: {sum(c['pass'] for c in cases)}/{len(cases)} pass, worst relative error "
            f"{worst:.1e} (tol {corr.get('tolerance', {}).get(p)})"
        )
    for c in result.get("sdpa_backends", {}).get("cases", []):
        if c["model"] == "prefix" and c["precision"] == "bf16":
            alone = ",".join(b for b, r in c["forced"].items() if r == "ok")
            mask = "prefix mask" if c["padded_batch"] else "no mask"
            choice = "/".join(c["dispatcher_choice"])
            log(f"SDPA bf16 {c['mode']:5} {mask:11}: dispatcher {choice}; alone ok: {alone}")
    if "train" in sp:
        log(
            f"\ntrain step, {sp['config']['name']}: ms (median) | samples/s | peak GiB | x ft step | x ft memory"
        )
        for p, rows in sp["train"].items():
            for m, r in rows.items():
                ratio = sp["ratios"][p]
                step = ratio.get(f"step_ratio_{m}_vs_finetune", 1.0 if r.get("ms_median") else None)
                mem = ratio.get(
                    f"peak_memory_ratio_{m}_vs_finetune", 1.0 if r.get("peak_allocated_bytes") else None
                )
                log(
                    f"  {p} {m:8} {_f(r.get('ms_median'), '9.1f')} {_f(r.get('samples_per_s'), '9.1f')} "
                    f"{_gib(r.get('peak_allocated_bytes'))} {_f(step, '8.3f')} {_f(mem, '8.3f')} "
                    f"{r.get('error') or r.get('skipped') or ''}"
                )
        log("eval (no_grad): samples/s, x frozen backbone")
        for p, rows in sp["eval"].items():
            frozen = rows.get("frozen", {}).get("samples_per_s")
            cells = [f"{v} {_f(r.get('samples_per_s'), '.1f')}" for v, r in rows.items()]
            rel = [
                f"{v} {_f(r['samples_per_s'] / frozen)}"
                for v, r in rows.items()
                if frozen and r.get("samples_per_s")
            ]
            log(f"  {p}: {'; '.join(cells)} | x frozen: {'; '.join(rel)}")
    ck, co = sp.get("gradient_checkpointing", {}), result.get("compile", {})
    for m in CHECKPOINTED:
        r = ck.get(m, {})
        log(
            f"gradient checkpointing ({m}, bf16): pass={r.get('pass')} {_f(r.get('ms_median'), '.1f')} ms, peak "
            f"{_gib(r.get('peak_allocated_bytes')).strip()} GiB (x {_f(r.get('peak_vs_without'))} without) "
            f"{r.get('error', r.get('skipped', ''))}"
        )
    log(
        f"  peak memory with checkpointing, prefix / finetune: {_f(ck.get('peak_memory_ratio_prefix_vs_finetune'))}"
    )
    bb = sp.get("bf16_backbone", {})
    log(
        f"prefix, frozen backbone stored in bf16: {_f(bb.get('ms_median'), '.1f')} ms (x "
        f"{_f(bb.get('ms_median_vs_finetune'))} ft), peak {_gib(bb.get('peak_allocated_bytes')).strip()} GiB (x "
        f"{_f(bb.get('peak_allocated_bytes_vs_finetune'))} ft bf16) {bb.get('error', bb.get('skipped', ''))}"
    )
    log(
        f"torch.compile ({co.get('backend')}, {co.get('layers')} layers): pass={co.get('pass')} first step "
        f"{_f(co.get('first_step_s'), '.1f')} s, {_f(co.get('compiled_ms_median'), '.1f')} ms vs eager "
        f"{_f(co.get('eager_ms_median'), '.1f')} ms, graph breaks {co.get('graph_breaks', '-')} "
        f"{co.get('error', co.get('skipped', ''))}"
    )
    for k, t in result["targets"].items():
        mark = {True: "PASS", False: "MISS", None: "n/a "}[t["pass"]]
        log(f"  {mark} {k} = {t['value']} {t.get('target', '')}")
    if result["skipped"]:
        log(f"skipped for the time budget: {', '.join(result['skipped'])}")


def output_path(smoke: bool, out: str | None) -> str:
    """Where the JSON goes. A smoke run (CPU, tiny sizes) must never replace the committed GPU results: without
    --out it writes to the system temp folder, and --out results/gpu.json is refused."""
    if not smoke:
        return DEFAULT_OUT if out is None else out
    if out is None:
        return os.path.join(tempfile.gettempdir(), SMOKE_OUT_NAME)
    if os.path.realpath(out) == os.path.realpath(DEFAULT_OUT):
        raise SystemExit(
            f"gpu_check: --smoke would overwrite the committed GPU results {DEFAULT_OUT}; "
            "pass another --out, or leave it out to write to the temp folder"
        )
    return out


def main(argv=None, started: float | None = None) -> dict:
    started = time.monotonic() if started is None else started
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: the same code path in seconds")
    ap.add_argument(
        "--out",
        default=None,
        help=f"where to write the JSON (default results/gpu.json; --smoke: $TMPDIR/{SMOKE_OUT_NAME})",
    )
    ap.add_argument(
        "--budget-s", type=float, default=None, help="global time budget (default 200; smoke 600)"
    )
    ap.add_argument(
        "--warmup", type=int, default=None, help="warm-up steps per measurement (default 5; smoke 1)"
    )
    ap.add_argument(
        "--steps", type=int, default=None, help="timed steps per measurement (default 10; smoke 2)"
    )
    ap.add_argument("--compile-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.compile_worker:
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        compile_worker(args.compile_worker)
        return {}
    out = output_path(args.smoke, args.out)
    hf_logging = transformers.utils.logging
    threads = torch.get_num_threads()
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    if args.smoke:
        print(f"gpu_check --smoke: writing {out}")
        torch.set_num_threads(1)  # tiny ops on a shared CPU: one thread is the fast and steady choice
    try:
        return run(
            args.smoke,
            out,
            args.budget_s if args.budget_s is not None else (600 if args.smoke else 200),
            args.warmup if args.warmup is not None else (1 if args.smoke else 5),
            args.steps if args.steps is not None else (2 if args.smoke else 10),
            started,
        )
    finally:  # main() may run inside a test session: leave threads and transformers' logging as they were
        torch.set_num_threads(threads)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


if __name__ == "__main__":
    main(started=START)
