"""The measured sections of a benchmarks/speed.py run: one model's variants, the sweeps over P and T, the investigation.

bench_model times every training variant and the eval variants of one Spec round-robin and adds the exact memory
counts (cpu/memory.py) and the headline ratios; the sweeps time prefix steps against P and against T on the headline
config; investigate times alternative set-ups against the default fine-tuning step and profiles both methods.
"""

from __future__ import annotations

import gc
from dataclasses import asdict

from benchmarks.common.spec import Spec, make_batch
from benchmarks.cpu.memory import measure_memory, rss_in_subprocess
from benchmarks.cpu.timing import eval_step, paired_ratio, round_robin, summarize, train_step
from benchmarks.cpu.variants import EVAL_VARIANTS, TRAIN_VARIANTS, build


def bench_model(spec: Spec, rounds: int, warmup: int, steps: int, optim: str, rss: bool, log=print) -> dict:
    """One Spec: {"config", "train": variant -> timings + bytes, "eval": variant -> timings + examples/s,
    "ratios" (the headline ratios), "paired_ratios" (per-round spreads against finetune / frozen)}."""
    log(
        f"\n== {spec.name}: {spec.layers} layers x {spec.hidden}, B={spec.batch} T={spec.seq_len} P={spec.pre_seq_len}"
    )
    batch = make_batch(spec)
    models = {v: build(spec, v, optim=optim) for v in TRAIN_VARIANTS}
    memory = {v: measure_memory(m, o, batch) for v, (m, o) in models.items()}
    frozen = build(spec, "frozen")[0]
    memory["frozen"] = {
        "trainable_params": 0,
        "total_params": frozen.num_parameters(),
        "param_bytes": sum(p.nbytes for p in frozen.parameters()),
    }

    def train_job(m, o):
        return lambda: train_step(m.train(), o, batch)

    def eval_job(m):
        return lambda: eval_step(m.eval(), batch)

    jobs = {f"train/{v}": train_job(m, o) for v, (m, o) in models.items()}
    eval_models = {"frozen": frozen, "prefix": models["prefix"][0], "prompt": models["prompt"][0]}
    jobs.update({f"eval/{v}": eval_job(m) for v, m in eval_models.items()})
    samples = round_robin(jobs, rounds, warmup, steps, log)
    train = {v: {**summarize(samples[f"train/{v}"]), **memory[v]} for v in TRAIN_VARIANTS}
    evals = {}
    for v in EVAL_VARIANTS:
        s = summarize(samples[f"eval/{v}"])
        s["examples_per_s"] = spec.batch / (s["ms_median"] / 1e3)
        evals[v] = s
    if rss:
        for v in (*TRAIN_VARIANTS, "frozen"):
            log(f"  peak RSS of {v} in a subprocess ...")
            target = train[v] if v in train else memory["frozen"]
            target.update(rss_in_subprocess(spec, v, optim))
    train["frozen"] = memory["frozen"]
    ft = train["finetune"]

    def vs_finetune(variant: str, key: str) -> float:
        return train[variant][key] / ft[key]

    eval_vs_frozen = {
        v: evals[v]["examples_per_s"] / evals["frozen"]["examples_per_s"] for v in ("prefix", "prompt")
    }
    ratios = {
        **{f"step_ratio_{v}_vs_finetune": vs_finetune(v, "ms_median") for v in TRAIN_VARIANTS[1:]},
        **{
            f"optimizer_state_ratio_{v}_vs_finetune": vs_finetune(v, "optimizer_state_bytes")
            for v in ("prefix", "prefix_projection", "prompt")
        },
        "train_memory_ratio_prefix_vs_finetune": vs_finetune("prefix", "train_memory_bytes"),
        "saved_activation_ratio_prefix_vs_finetune": vs_finetune("prefix", "saved_activation_bytes"),
        **{f"eval_throughput_ratio_{v}_vs_frozen": r for v, r in eval_vs_frozen.items()},
    }
    paired = {v: paired_ratio(train[v], ft) for v in TRAIN_VARIANTS if v != "finetune"}
    paired.update({f"eval/{v}": paired_ratio(evals[v], evals["frozen"]) for v in ("prefix", "prompt")})
    del models, frozen, jobs, eval_models
    gc.collect()
    return {"config": asdict(spec), "train": train, "eval": evals, "ratios": ratios, "paired_ratios": paired}


def sweep_prefix_len(spec, lengths, rounds, warmup, steps, optim, log=print) -> list:
    """Prefix step time for each P in `lengths` at the spec's T, against the first P and against fine-tuning."""
    log(f"\n== sweep P in {list(lengths)} at T={spec.seq_len} ({spec.name}); finetune as reference")
    batch = make_batch(spec)
    jobs, keep = {}, []
    for P in ["finetune", *lengths]:
        m, o = (
            build(spec, "finetune", optim=optim)
            if P == "finetune"
            else build(spec, "prefix", optim=optim, pre_seq_len=P)
        )
        keep.append((m, o))
        jobs[f"P={P}" if P != "finetune" else "finetune"] = lambda m=m, o=o: train_step(m, o, batch)
    s = {k: summarize(v) for k, v in round_robin(jobs, rounds, warmup, steps, log).items()}
    ft, base = s["finetune"]["ms_median"], s[f"P={lengths[0]}"]["ms_median"]
    return [
        {
            "pre_seq_len": P,
            "seq_len": spec.seq_len,
            "prefix_ms_median": s[f"P={P}"]["ms_median"],
            "prefix_vs_first_P": s[f"P={P}"]["ms_median"] / base,
            "prefix_vs_finetune": s[f"P={P}"]["ms_median"] / ft,
            "finetune_ms_median": ft,
        }
        for P in lengths
    ]


def sweep_seq_len(spec, lengths, rounds, warmup, steps, optim, log=print) -> list:
    """Fine-tuning and prefix step time for each T in `lengths` at the spec's P."""
    log(f"\n== sweep T in {list(lengths)} at P={spec.pre_seq_len} ({spec.name}): finetune and prefix")
    jobs, keep = {}, []
    for T in lengths:
        batch = make_batch(spec, seq_len=T)
        for v in ("finetune", "prefix"):
            m, o = build(spec, v, optim=optim)
            keep.append((m, o))
            jobs[f"{v}/T={T}"] = lambda m=m, o=o, b=batch: train_step(m, o, b)
    s = {k: summarize(v) for k, v in round_robin(jobs, rounds, warmup, steps, log).items()}
    rows = []
    for T in lengths:
        ft, px = s[f"finetune/T={T}"]["ms_median"], s[f"prefix/T={T}"]["ms_median"]
        rows.append(
            {
                "seq_len": T,
                "pre_seq_len": spec.pre_seq_len,
                "finetune_ms_median": ft,
                "prefix_ms_median": px,
                "prefix_vs_finetune": px / ft,
            }
        )
    return rows


def investigate(spec: Spec, rounds: int, warmup: int, steps: int, log=print) -> dict:
    """Step time of alternative set-ups against the default fine-tuning step, and the profiler's top ops of a
    fine-tuning and a prefix step."""
    log(f"\n== investigate ({spec.name})")
    batch = make_batch(spec)
    upper = f"{spec.layers // 2}-{spec.layers - 1}"
    setups = {  # name -> (build kwargs, what it isolates)
        "finetune": ({"variant": "finetune"}, "the baseline: sdpa, fused AdamW over all parameters"),
        "finetune_eager": ({"variant": "finetune", "attn": "eager"}, "attention kernel: eager"),
        "finetune_adamw_forloop": ({"variant": "finetune", "optim": "forloop"}, "AdamW for-loop (not fused)"),
        "finetune_frozen_words": (
            {"variant": "finetune_frozen_words"},
            "cost of the 30522-row word-embedding gradient + its AdamW update",
        ),
        "finetune_no_dropout": ({"variant": "finetune", "dropout": 0.0}, "cost of dropout (all of it off)"),
        "prefix": ({"variant": "prefix"}, "P-tuning v2 as benchmarked"),
        "prefix_eager": ({"variant": "prefix", "attn": "eager"}, "prefix with the eager attention kernel"),
        "prefix_no_dropout": ({"variant": "prefix", "dropout": 0.0}, "prefix with all dropout off"),
        "prefix_upper_layers": (
            {"variant": "prefix", "prefix_layers": upper},
            f"--prefix_layers {upper}: backward stops at layer {spec.layers // 2}",
        ),
        "dx_only": (
            {"variant": "dx_only"},
            "frozen backbone, input gradients through every layer, no prefix: the floor of any deep prompt",
        ),
        "head_only": ({"variant": "head_only"}, "frozen backbone, head only: forward + tiny backward"),
    }
    built = {name: build(spec, **kw) for name, (kw, _) in setups.items()}
    jobs = {name: (lambda m=m, o=o: train_step(m, o, batch)) for name, (m, o) in built.items()}
    s = {k: summarize(v) for k, v in round_robin(jobs, rounds, warmup, steps, log).items()}
    ft = s["finetune"]
    table = {
        name: {
            "ms_median": r["ms_median"],
            "forward_ms_median": r["forward_ms_median"],
            "backward_ms_median": r["backward_ms_median"],
            "optimizer_ms_median": r["optimizer_ms_median"],
            "vs_finetune": r["ms_median"] / ft["ms_median"],
            "per_round_vs_finetune": paired_ratio(r, ft)["per_round_median"],
            "what": setups[name][1],
        }
        for name, r in s.items()
    }
    profiles = {}
    from torch.profiler import ProfilerActivity, profile

    for name in ("finetune", "prefix"):
        m, o = built[name]
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(2):
                train_step(m, o, batch)
        ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in ops)
        profiles[name] = [
            {
                "op": e.key,
                "self_cpu_ms_per_step": e.self_cpu_time_total / 2e3,
                "share": e.self_cpu_time_total / total,
            }
            for e in ops[:12]
        ]
    return {"step_times": table, "profiler_top_ops": profiles}
