"""benchmarks/speed.py's verdict and tables: the targets the headline ratios are checked against, and the printed report."""

from __future__ import annotations

TARGETS = {  # key -> (comparison, threshold)
    "step_ratio_prefix_vs_finetune": ("<=", 0.65),
    "optimizer_state_ratio_prefix_vs_finetune": ("<=", 0.02),
    "eval_throughput_ratio_prefix_vs_frozen": (">=", 0.9),
}


def targets(ratios: dict) -> dict:
    out = {}
    for key, (op, threshold) in TARGETS.items():
        value = ratios[key]
        ok = value <= threshold if op == "<=" else value >= threshold
        out[key] = {"value": value, "target": f"{op} {threshold}", "pass": bool(ok)}
    return out


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
