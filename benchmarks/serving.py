"""Serving K adapters from one backbone: mixed batches vs one adapter per batch vs K separately loaded models.

    python -m benchmarks.serving                                     # MiniLM, K = 1, 4, 16 -> results/serving.json
    python -m benchmarks.serving --ks 1 4 --examples 64 --batch_size 16 --repeats 1 --out /tmp/serving  # a try
    python -m benchmarks.serving --smoke --out /tmp/serving          # tiny random BERT, K = 1, 2, same code path

Backbone: all-MiniLM-L6-v2 (benchmarks/paths.py), eval, no_grad, CUDA when present, else CPU. K random P-tuning v2
adapters (sequence classification, 2 or 3 labels, --prefix, P = 16) are built with build_on on ONE backbone; an
extra group at the largest K gives the adapters P = 8/16/32 in turn (the bank is then padded to 32 and masked).
Inputs: RTE val premise/hypothesis pairs (cycled; random ids of RTE-like lengths when the data is missing),
tokenized once, at most 128 tokens; example i goes to adapter i mod K. Every configuration sorts its rows longest
first, as serving/predictor.py does, and pads each batch to its own longest row. The example count is rounded up to
a multiple of max(K) x batch size, so every batch of every configuration is full: all run at the same batch size.

Configurations, per K:
  mixed            batches in that order through MultiAdapterModel: a batch mixes adapters (what Predictor does).
  mixed_same_rows  the per-adapter batches below (same rows, same padding), but row j of a batch served by adapter
                   (a + j) mod K, through MultiAdapterModel: the cost of mixing alone, without mixed's padding gain.
  per_adapter      the examples grouped by adapter, batches of one adapter, through the same MultiAdapterModel.
  own_model        the same per-adapter batches through each adapter's own PTuningForSequenceClassification forward
                   (run.py's single-adapter model) on the shared backbone: the single-adapter reference.
  separate_models  K backbones, each loaded with from_pretrained + its adapter; the same per-adapter batches.
With K adapters, one adapter's examples sorted alone span every length, so per-adapter batches carry more padding
than mixed ones (padded_tokens): mixed / own_model includes that gain, mixed_same_rows / own_model does not.

Figures per row:
  examples_per_s  examples / median seconds of one pass over all batches, over --repeats passes after one warm-up
                  pass; the configurations of a group run interleaved in each repetition (order rotated).
  static_bytes    the unique tensors the configuration holds (parameters + buffers, one count per storage), plus
                  MultiAdapterModel's prefix bank for the three configs served by it.
  peak_bytes      a fresh process tokenizes, pays the lazy imports (a throwaway 1-layer model), then builds the
                  configuration and runs its batches once. CPU: its peak RSS (VmHWM, reset at that point) minus its
                  RSS then; CUDA: torch.cuda.max_memory_allocated minus the memory allocated then. On CPU,
                  transformers 5 keeps float32 safetensors weights as views of a private mmap of the file: RSS counts
                  the weight pages a forward touched (never the embedding rows of unused tokens), and each separately
                  loaded copy counts again although the page cache holds the file once.
  backbone_bytes, adapter_bytes  one backbone; the adapters' own tensors (prefix + head) summed over the K adapters.
Checks at the largest K of the P = 16 groups (the issue's K = 16), all recomputable from the rows:
  memory_ratio_k16                mixed static_bytes / (backbone_bytes + adapter_bytes)             pass: <= 1.1
  throughput_ratio_k16            mixed examples_per_s / own_model examples_per_s                  pass: >= 0.9
  throughput_ratio_same_rows_k16  mixed_same_rows examples_per_s / own_model examples_per_s        pass: >= 0.9
  peak_ratio_k16                  mixed peak / (own_model K=1 peak + the other adapters' own bytes) pass: <= 1.1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoConfig, AutoModel, AutoTokenizer  # noqa: E402

from arguments import ModelArguments  # noqa: E402
from benchmarks.common.output import write_json  # noqa: E402
from benchmarks.common.process import json_child, proc_status_kib  # noqa: E402
from benchmarks.common.tiny import save_tiny_model  # noqa: E402
from benchmarks.paths import DATA, RESULTS, minilm_path  # noqa: E402
from model.config import MethodConfig  # noqa: E402
from model.loading import load_backbone  # noqa: E402
from model.multi_adapter import MultiAdapterModel, build_on  # noqa: E402
from model.utils import TaskType  # noqa: E402

CONFIGS = ("mixed", "mixed_same_rows", "per_adapter", "own_model", "separate_models")
BANKED = CONFIGS[:3]  # served by MultiAdapterModel
MAX_LEN, MEMORY_TARGET, THROUGHPUT_TARGET = 128, 1.1, 0.9
RTE = os.path.join("superglue", "RTE", "val.jsonl")  # under DATA
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_OUT = os.path.join(RESULTS, "serving.json")


# -- inputs ------------------------------------------------------------------------------------------------------
def tokenized_rows(path: str, n: int) -> tuple[list[dict], str, int]:
    """(n rows of token-id lists, where they came from, the pad id): RTE val pairs cycled, or random ids."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if os.path.exists(os.path.join(DATA, RTE)):
        with open(os.path.join(DATA, RTE)) as f:
            pairs = [json.loads(line) for line in f if line.strip()]
        enc = tokenizer([p["premise"] for p in pairs], [p["hypothesis"] for p in pairs], truncation=True,
                        max_length=MAX_LEN)  # fmt: skip
        rows, source = [{k: enc[k][i] for k in INPUTS} for i in range(len(pairs))], RTE
    else:  # [CLS] a [SEP] b [SEP], 24..128 tokens as RTE's
        g, rows, source = torch.Generator().manual_seed(0), [], "random ids"
        for _ in range(n):
            T = int(torch.randint(24, MAX_LEN + 1, (1,), generator=g))
            ids = torch.randint(1000, tokenizer.vocab_size, (T,), generator=g).tolist()
            ids[0], ids[T // 2], ids[-1] = tokenizer.cls_token_id, *[tokenizer.sep_token_id] * 2
            types = [0] * (T // 2 + 1) + [1] * (T - T // 2 - 1)
            rows.append({"input_ids": ids, "attention_mask": [1] * T, "token_type_ids": types})
    return [rows[i % len(rows)] for i in range(n)], source, tokenizer.pad_token_id


def pad(rows: list[dict], key: str, fill: int, device) -> torch.Tensor:
    T = max(len(row[key]) for row in rows)
    return torch.tensor([row[key] + [fill] * (T - len(row[key])) for row in rows], device=device)  # (B, T)


def make_batches(rows: list[dict], K: int, batch_size: int, config: str, pad_id: int, device) -> list[dict]:
    """Rows sorted longest first (stable, as serving/predictor.py), batched in that order ("mixed") or per adapter;
    "mixed_same_rows" takes the per-adapter batches and gives row j of a batch to adapter (a + j) mod K."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
    grouped, rotate = config != "mixed", config == "mixed_same_rows"
    batches = []
    for group in [[i for i in order if i % K == a] for a in range(K)] if grouped else [order]:
        for start in range(0, len(group), batch_size):
            index = group[start : start + batch_size]
            batch = {key: pad([rows[i] for i in index], key, pad_id if key == "input_ids" else 0, device)
                     for key in INPUTS}  # fmt: skip
            row_adapter = [(i + (j if rotate else 0)) % K for j, i in enumerate(index)]
            batch["row_adapter"] = torch.tensor(row_adapter, device=device)  # (B,)
            batch["adapter"] = index[0] % K if grouped else None  # a per-adapter batch's one adapter
            batches.append(batch)
    return batches


# -- models ------------------------------------------------------------------------------------------------------
def backbone_on(path: str, device):
    model = load_backbone(path, attn_implementation="sdpa", add_pooling_layer=True)
    return model.to(device).eval()


def new_adapter(backbone, P: int, a: int, device):
    """Adapter a: P-tuning v2 sequence classification with 2 or 3 labels, default init seeded by its index."""
    torch.manual_seed(a)
    args = ModelArguments(model_name_or_path="serving", prefix=True, pre_seq_len=P, hidden_dropout_prob=0.0)
    method = MethodConfig.from_args(args, backbone.config)
    return build_on(backbone, method, TaskType.SEQUENCE_CLASSIFICATION, 2 + a % 2).to(device).eval()


def tensor_bytes(modules, extra=()) -> int:
    """Bytes of the unique storages of the modules' parameters and buffers (and of `extra` tensors)."""
    storages = {}
    for t in [*(t for m in modules for t in (*m.parameters(), *m.buffers())), *extra]:
        s = t.untyped_storage()
        storages[s.data_ptr()] = max(storages.get(s.data_ptr(), 0), s.nbytes())
    return sum(storages.values())


def build(path: str, prefix_lengths: list[int], configs, device) -> dict:
    """{config: (forward(batch), static bytes)} for `configs` only (a peak child builds one), plus
    "backbone_bytes" (one backbone) and "adapter_bytes" (the adapters' own tensors, summed)."""
    inputs = lambda b: {k: b[k] for k in INPUTS}  # noqa: E731
    out, models = {}, []
    if set(configs) - {"separate_models"}:
        backbone = backbone_on(path, device)
        models = adapters = [new_adapter(backbone, P, a, device) for a, P in enumerate(prefix_lengths)]
        out["own_model"] = (lambda b: adapters[b["adapter"]](**inputs(b)).logits, tensor_bytes(adapters))
        if set(configs) & set(BANKED):
            bank = MultiAdapterModel(backbone)
            for a, model in enumerate(adapters):
                bank.add(f"adapter{a}", model)
            held = tensor_bytes([bank], extra=bank.bank())  # + keys/values (L, A, heads, P_max, d), valid
            for config in BANKED:
                out[config] = (lambda b: bank(**inputs(b), row_adapter=b["row_adapter"]), held)
    if "separate_models" in configs:
        own = [new_adapter(backbone_on(path, device), P, a, device) for a, P in enumerate(prefix_lengths)]
        models = models or own
        out["separate_models"] = (lambda b: own[b["adapter"]](**inputs(b)).logits, tensor_bytes(own))
    out["backbone_bytes"] = tensor_bytes([models[0].backbone])
    out["adapter_bytes"] = sum(tensor_bytes([m]) - tensor_bytes([m.backbone]) for m in models)
    return out


# -- measuring ---------------------------------------------------------------------------------------------------
def one_pass(forward, batches, device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    sync()
    start = time.perf_counter()
    for batch in batches:
        forward(batch)
    sync()
    return time.perf_counter() - start


def time_interleaved(runs: dict, repeats: int, device) -> dict[str, list[float]]:
    """Seconds per pass of each config: one warm-up pass each, then `repeats` rounds A, B, C (order rotated)."""
    names, seconds = list(runs), {name: [] for name in runs}
    with torch.no_grad():
        for name in names:
            one_pass(*runs[name], device)  # warm-up: allocator, kernels, the prefix bank
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                seconds[name].append(one_pass(*runs[name], device))
    return seconds


def _status_bytes(field: str) -> int | None:
    kib = proc_status_kib(field)
    return None if kib is None else kib * 1024


def pay_lazy_imports(path: str, device) -> None:
    """One forward of a throwaway 1-layer model of the same type, so the modeling code (importing BERT's costs
    ~140 MB of RSS) and the first-call set-up are paid before the baseline, not counted as the configuration's."""
    config = AutoConfig.from_pretrained(path, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                        intermediate_size=64, vocab_size=64)  # fmt: skip
    backbone = (
        AutoModel.from_config(config, attn_implementation="sdpa", add_pooling_layer=True).to(device).eval()
    )
    bank = MultiAdapterModel(backbone)
    bank.add("warm-up", new_adapter(backbone, 4, 0, device))
    ids = torch.randint(5, 64, (2, 8), device=device)  # (B, T)
    with torch.no_grad():
        bank(
            ids, torch.ones_like(ids), torch.zeros_like(ids), torch.zeros(2, dtype=torch.long, device=device)
        )
        bank.adapter(0)(input_ids=ids)


def child(request: dict) -> dict:
    """In a fresh process: build one configuration, run its batches once, report its peak memory in bytes."""
    device, config = torch.device(request["device"]), request["config"]
    if request["threads"]:
        torch.set_num_threads(request["threads"])
    rows, _, pad_id = tokenized_rows(request["path"], request["examples"])
    batches = make_batches(
        rows, len(request["prefix_lengths"]), request["batch_size"], config, pad_id, device
    )
    pay_lazy_imports(request["path"], device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _status_bytes("VmRSS") or 0
        try:  # Linux: reset the high-water mark, so the import phase's peak cannot count
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
    forward = build(request["path"], request["prefix_lengths"], [config], device)[config][0]
    with torch.no_grad():
        one_pass(forward, batches, device)
    if device.type == "cuda":
        return {"peak_bytes": torch.cuda.max_memory_allocated() - base}
    peak = _status_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"peak_bytes": peak - base}


def peak_in_child(request: dict) -> int | None:
    try:
        return json_child("benchmarks.serving", ["--child", json.dumps(request)], timeout=1800)["peak_bytes"]
    except (subprocess.SubprocessError, ValueError, IndexError, KeyError) as err:
        detail = str(getattr(err, "stderr", None) or err)[-500:]
        print(
            f"[serving] peak child {request['config']} K={len(request['prefix_lengths'])}: {detail}",
            flush=True,
        )
        return None


# -- the run -----------------------------------------------------------------------------------------------------
def checks(rows: list[dict], K: int) -> dict:
    """The done-when figures at K (P = 16 groups), from the rows alone."""
    row = {(r["K"], r["prefix_lengths"], r["config"]): r for r in rows}
    mixed, own = row[(K, "16", "mixed")], row[(K, "16", "own_model")]
    memory = mixed["static_bytes"] / (mixed["backbone_bytes"] + mixed["adapter_bytes"])
    throughput = mixed["examples_per_s"] / own["examples_per_s"]
    same_rows = row[(K, "16", "mixed_same_rows")]["examples_per_s"] / own["examples_per_s"]
    single, peak = row.get((1, "16", "own_model")), None
    if single and single["peak_bytes"] and mixed["peak_bytes"]:  # one adapter's process + the others' tensors
        peak = mixed["peak_bytes"] / (single["peak_bytes"] + mixed["adapter_bytes"] - single["adapter_bytes"])
    return {"K": K, f"memory_ratio_k{K}": memory, "memory_pass": memory <= MEMORY_TARGET,
            f"throughput_ratio_k{K}": throughput, "throughput_pass": throughput >= THROUGHPUT_TARGET,
            f"throughput_ratio_same_rows_k{K}": same_rows, "throughput_same_rows_pass": same_rows >= THROUGHPUT_TARGET,
            f"peak_ratio_k{K}": peak, "peak_pass": None if peak is None else peak <= MEMORY_TARGET}  # fmt: skip


def run(args, path: str, backbone_name: str) -> dict:
    device, K_max = torch.device(args.device), max(args.ks)
    examples = -(-args.examples // (K_max * args.batch_size)) * K_max * args.batch_size  # full batches only
    rows_in, source, pad_id = tokenized_rows(path, examples)
    groups = [(K, [16] * K, CONFIGS) for K in args.ks]
    groups.append((K_max, [(8, 16, 32)[a % 3] for a in range(K_max)], CONFIGS[:4]))  # shared backbone only
    rows, requests = [], []
    for K, prefix_lengths, configs in groups:
        built = build(path, prefix_lengths, configs, device)
        runs = {c: (built[c][0], make_batches(rows_in, K, args.batch_size, c, pad_id, device)) for c in configs}  # fmt: skip
        seconds = time_interleaved(runs, args.repeats, device)
        label = "/".join(str(P) for P in sorted(set(prefix_lengths)))
        for c in configs:
            batches = runs[c][1]
            rows.append({"K": K, "prefix_lengths": label, "config": c, "examples": examples,
                         "batches": len(batches), "padded_tokens": sum(b["input_ids"].numel() for b in batches),
                         "seconds": seconds[c], "examples_per_s": examples / statistics.median(seconds[c]),
                         "static_bytes": built[c][1], "backbone_bytes": built["backbone_bytes"],
                         "adapter_bytes": built["adapter_bytes"], "peak_bytes": None})  # fmt: skip
            requests.append({"path": path, "prefix_lengths": prefix_lengths, "config": c, "examples": examples,
                             "batch_size": args.batch_size, "device": args.device, "threads": args.threads})  # fmt: skip
        print(f"[serving] K={K} P={label}: " + ", ".join(f"{r['config']} {r['examples_per_s']:.1f}/s"
              for r in rows[-len(configs):]), flush=True)  # fmt: skip
        del built, runs
        gc.collect()
    check_rows = ((K_max, "16", "mixed"), (1, "16", "own_model"))
    # after every timing, so no child competes with a timed pass
    for r, request in zip(rows, requests, strict=True):
        wanted = (r["K"], r["prefix_lengths"], r["config"]) in check_rows
        if args.peak == "all" or (args.peak == "checks" and wanted):
            r["peak_bytes"] = peak_in_child(request)
    for r in rows:
        own = next(o for o in rows if (o["K"], o["prefix_lengths"], o["config"]) ==
                   (r["K"], r["prefix_lengths"], "own_model"))  # fmt: skip
        r["vs_own_model"] = r["examples_per_s"] / own["examples_per_s"]
    return {"device": str(device), "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"), "backbone": backbone_name,
            "data": source, "batch_size": args.batch_size, "examples": examples, "repeats": args.repeats,
            "rows": rows, "checks": checks(rows, K_max)}  # fmt: skip


def print_table(result: dict) -> None:
    mib = lambda b: "-" if b is None else f"{b / 2**20:.1f}"  # noqa: E731
    print(f"\n{result['backbone']} on {result['device']} ({result['threads']} threads), batch {result['batch_size']}, "
          f"{result['examples']} examples ({result['data']}), median of {result['repeats']} passes")  # fmt: skip
    print(f"{'K':>3} {'P':>8} {'config':<16} {'ex/s':>9} {'x own':>6} {'padded tok':>10} {'static MiB':>10} "
          f"{'peak MiB':>9}")  # fmt: skip
    for r in result["rows"]:
        print(f"{r['K']:>3} {r['prefix_lengths']:>8} {r['config']:<16} {r['examples_per_s']:>9.1f} "
              f"{r['vs_own_model']:>6.3f} {r['padded_tokens']:>10} {mib(r['static_bytes']):>10} "
              f"{mib(r['peak_bytes']):>9}")  # fmt: skip
    print(json.dumps(result["checks"]))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny random BERT on CPU, K = 1, 2, 8 examples")
    ap.add_argument("--out", default=RESULTS, help="folder for serving.json (default benchmarks/results)")
    ap.add_argument("--ks", type=int, nargs="+", help="adapter counts (default 1 4 16; smoke 1 2)")
    ap.add_argument("--examples", type=int, help="default 1024 (smoke 8); rounded up to full batches")
    ap.add_argument("--batch_size", type=int, help="default 64 (smoke 4)")
    ap.add_argument("--repeats", type=int, help="timed passes per configuration (default 3; smoke 1)")
    ap.add_argument("--peak", choices=("all", "checks", "none"),
                    help="peak-memory child processes: every row / the two rows the check needs / none "
                         "(default all; smoke checks)")  # fmt: skip
    ap.add_argument("--threads", type=int, help="torch threads, children too (default: torch's own; smoke 1)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    hf_logging = transformers.utils.logging
    if args.child:
        hf_logging.disable_progress_bar()  # no "Loading weights" bar per backbone
        out = child(json.loads(args.child))
        print(json.dumps(out))
        return out
    defaults = dict(ks=[1, 2], examples=8, batch_size=4, repeats=1, peak="checks", threads=1) if args.smoke else \
        dict(ks=[1, 4, 16], examples=1024, batch_size=64, repeats=3, peak="all", threads=None)  # fmt: skip
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    threads, bars = torch.get_num_threads(), hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        with tempfile.TemporaryDirectory(prefix="serving-tiny-") as tmp:
            if args.smoke:  # tiny random BERT 2 x 32 with MiniLM's tokenizer
                args.device, path, name = "cpu", save_tiny_model(tmp, "bert"), "tiny random BERT 2 x 32"
            else:
                path, name = minilm_path(), "all-MiniLM-L6-v2"
            result = run(args, path, name)
    finally:
        torch.set_num_threads(threads)  # main() may run inside a test session: leave it as it was
        if bars:
            hf_logging.enable_progress_bar()
    write_json(os.path.join(args.out, os.path.basename(DEFAULT_OUT)), result)
    print_table(result)
    return result


if __name__ == "__main__":
    main()
