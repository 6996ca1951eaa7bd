"""Speed and memory of P-tuning v2 vs fine-tuning vs prompt tuning, on CPU, in one process.

Run (from the repository root):
    python -m benchmarks.speed                  # full run, ~12 min on 2 quiet cores -> benchmarks/results/speed.json
    python -m benchmarks.speed --quick          # smoke: 1 round, small sweeps, no MiniLM/BERT-base/RSS
    python -m benchmarks.speed --investigate    # + why: attention, AdamW kind, embedding grad, dropout, profiler
    python -m benchmarks.speed --out /tmp/s.json --rounds 6 --steps 4 --warmup 2 --no-rss --no-minilm --threads 1

What is measured (torch.set_num_threads(2); the same batch, T and backbone for every variant of a model):
  train step  forward + backward + AdamW step (+ zero_grad) on a sequence-classification head, median ms over
              every timed step. Variants: finetune (AdamW over ALL parameters, embeddings included), prefix (P-tuning
              v2, P=16), prefix_projection (--prefix_projection, MLP hidden 512), prompt (P=16) and head_only
              (frozen backbone, only the classifier trains; a lower bound, for reference).
  eval        forward under torch.no_grad() in model.eval(): examples/s of prefix and prompt vs `frozen` (the same
              backbone and head without prefix, i.e. the fine-tuning-mode model in eval).
  memory      exact byte counts, not a profiler: parameters, gradients after backward, AdamW state after one step
              (exp_avg + exp_avg_sq; the scalar `step` tensors are listed apart), and the activations autograd saves
              for backward (every tensor passed to torch.autograd.graph.saved_tensors_hooks in one training
              forward, counted once per storage, parameter and buffer storages excluded). train_memory = the sum.
              Transient buffers inside backward are not in it. Unless --no-rss, each variant also runs alone in a
              subprocess that reports its peak RSS (VmHWM) and its RSS just before building the model (a tiny
              throwaway model has paid the lazy imports by then).
  sweeps      prefix step time vs P in {16, 64, 128, 224} at T=128 (fine-tuning alongside as reference) and
              fine-tuning/prefix step time vs T in {64, 128, 256} at P=16. Positions are shifted by P as the
              original, so P + T <= max_position_embeddings (512).
Noise: variants are timed round-robin (warm-up + timed steps per variant per round, the order rotated every round),
so machine load hits all of them alike; ratios are given as ratio of medians and as the median of per-round ratios.
On a shared machine two OpenMP threads wait on descheduled peers (a step gets 3-10x slower, small ops 100x): every
round logs the load average; trust a run whose load stays near its own 2 (or compare with --threads 1).
Models: (a) BERT-shaped random init, 4 layers x 256, 4 heads, FFN 1024, vocab 30522, B=16, T=128, P=16 (the
headline config: its ratios are checked against the targets); (b) the packaged sentence-transformers/all-MiniLM-L6-v2 (6 x 384), same B/T/P;
(c) a random model of bert-base-uncased's shape (12 x 768, 12 heads, FFN 3072, 110M parameters), same B/T/P, timed
over --base-rounds rounds (a fine-tuning step takes seconds on 2 threads).
Rows are padded to T with random lengths in [T/2, T] (one full row), as --pad_to_max_length batches are.

Modules: common/spec.py (Spec, the shapes, the batch), cpu/variants.py (one model + AdamW per variant),
cpu/timing.py (steps, round-robin, medians, ratios), cpu/memory.py (byte counts, the RSS worker), cpu/sections.py
(one model, the sweeps, the investigation), cpu/report.py (targets, printed tables); this file is the run and the
command line.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from dataclasses import dataclass, field

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

from benchmarks.common.output import write_json  # noqa: E402
from benchmarks.common.spec import BERT_BASE, BERT_4x256, Spec, minilm_spec  # noqa: E402
from benchmarks.cpu.memory import rss_worker  # noqa: E402
from benchmarks.cpu.report import report, targets  # noqa: E402
from benchmarks.cpu.sections import bench_model, investigate, sweep_prefix_len, sweep_seq_len  # noqa: E402
from benchmarks.cpu.timing import torch_threads  # noqa: E402
from benchmarks.paths import RESULTS  # noqa: E402

THREADS = 2


@dataclass
class Settings:
    """How much to time. specs[0] of a run gives the headline ratios and the sweeps."""

    rounds: int = 4
    warmup: int = 1  # warm-up steps per variant per round
    steps: int = 3  # timed steps per variant per round
    prefix_lengths: tuple = (16, 64, 128, 224)  # the P sweep; empty: no sweep
    seq_lengths: tuple = (64, 128, 256)  # the T sweep; empty: no sweep
    sweep_rounds: int | None = None  # None: `rounds`
    optim: str = "fused"  # AdamW implementation: fused, foreach or forloop
    rss: bool = False  # peak RSS of every variant in a subprocess
    investigate_rounds: int = 0  # 0: no investigation
    threads: int = THREADS
    rounds_by_model: dict = field(default_factory=dict)  # spec name -> rounds, for the big models


def run_benchmark(specs: list[Spec], log=print, **settings) -> dict:
    """The benchmark's core: returns the JSON-able result. `settings` are Settings' fields."""
    s = Settings(**settings)
    with torch_threads(s.threads):
        return _run(specs, s, log)


def _cpu_times() -> list[int]:
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return []


def _run(specs: list[Spec], s: Settings, log) -> dict:
    stat0, load0, t0 = _cpu_times(), os.getloadavg(), time.time()
    sweep_rounds = s.sweep_rounds or s.rounds
    models = {
        spec.name: bench_model(
            spec, s.rounds_by_model.get(spec.name, s.rounds), s.warmup, s.steps, s.optim, s.rss, log
        )
        for spec in specs
    }
    primary = models[specs[0].name]
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "settings": {
            "rounds": s.rounds,
            "rounds_by_model": s.rounds_by_model,
            "warmup_steps_per_round": s.warmup,
            "timed_steps_per_round": s.steps,
            "sweep_rounds": sweep_rounds,
            "optimizer": f"torch.optim.AdamW({s.optim}), lr 1e-5, weight_decay 0, over all trainable parameters",
            "attn_implementation": "sdpa",
            "dropout": 0.1,
            "step": "forward + backward + optimizer.step + zero_grad(set_to_none=True)",
            "memory": "param + grad + AdamW exp_avg/exp_avg_sq + autograd-saved activations (bytes, exact)",
        },
        "primary_config": specs[0].name,
        **primary["ratios"],
        "targets": targets(primary["ratios"]),
        "models": models,
    }
    for spec in specs[1:]:
        result["models"][spec.name]["targets"] = targets(models[spec.name]["ratios"])
    timing = (sweep_rounds, s.warmup, s.steps, s.optim, log)
    sweeps = {}
    if s.prefix_lengths:
        sweeps["prefix_len"] = sweep_prefix_len(specs[0], list(s.prefix_lengths), *timing)
    if s.seq_lengths:
        sweeps["seq_len"] = sweep_seq_len(specs[0], list(s.seq_lengths), *timing)
    result["sweeps"] = sweeps
    if s.investigate_rounds:
        result["investigation"] = investigate(specs[0], s.investigate_rounds, s.warmup, s.steps, log)
    stat1 = _cpu_times()
    result["load"] = {
        "loadavg_start": list(load0),
        "loadavg_end": list(os.getloadavg()),
        "wall_s": time.time() - t0,
    }
    if stat0 and stat1 and len(stat0) > 7:
        delta = [b - a for a, b in zip(stat0, stat1, strict=False)]
        result["load"]["steal_fraction"] = delta[7] / max(1, sum(delta))
    return result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round, small sweeps, no MiniLM, no RSS"
    )
    ap.add_argument("--out", default=os.path.join(RESULTS, "speed.json"))
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=1, help="warm-up steps per variant per round")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    ap.add_argument("--sweep-rounds", type=int, default=2)
    ap.add_argument(
        "--threads", type=int, default=THREADS, help="torch threads (the benchmark's setting is 2)"
    )
    ap.add_argument(
        "--optim",
        choices=["fused", "foreach", "forloop"],
        default="fused",
        help="AdamW implementation; 'fused' is HF Trainer's default (adamw_torch_fused)",
    )
    ap.add_argument("--no-rss", action="store_true", help="skip the per-variant peak-RSS subprocesses")
    ap.add_argument("--no-minilm", action="store_true", help="skip the packaged MiniLM model")
    ap.add_argument("--no-base", action="store_true", help="skip the BERT-base-sized random model")
    ap.add_argument("--base-rounds", type=int, default=2, help="rounds for the BERT-base-sized model")
    ap.add_argument(
        "--investigate", action="store_true", help="also time alternatives + profile (adds ~3 min)"
    )
    ap.add_argument("--rss-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_worker:
        rss_worker(args.rss_worker)
        return {}
    specs = [BERT_4x256]
    if args.quick:
        args.rounds, args.warmup, args.steps, args.sweep_rounds = 1, 1, 1, 1
        args.no_rss, args.no_minilm, args.no_base = True, True, True
    if not args.no_minilm and (mini := minilm_spec()) is not None:
        specs.append(mini)
    if not args.no_base:
        specs.append(BERT_BASE)
    result = run_benchmark(
        specs,
        rounds=args.rounds,
        warmup=args.warmup,
        steps=args.steps,
        prefix_lengths=(16, 64) if args.quick else (16, 64, 128, 224),
        seq_lengths=(64, 128) if args.quick else (64, 128, 256),
        sweep_rounds=args.sweep_rounds,
        optim=args.optim,
        rss=not args.no_rss,
        investigate_rounds=(1 if args.quick else 3) if args.investigate else 0,
        threads=args.threads,
        rounds_by_model={BERT_BASE.name: args.base_rounds},
    )
    report(result)
    write_json(args.out, result)
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
