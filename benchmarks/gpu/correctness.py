"""Correctness section of benchmarks/gpu_check.py: the model built by get_model against the hand-written reference
encoder (benchmarks/common/reference.py, the one tests/test_backbones.py checks every backbone with), on any device.

Tiny random backbones (benchmarks/gpu/models.py: 2 layers × 128, 2 heads of 64 = roberta-large's head size) saved to
a temporary folder and loaded through the project's own get_model, on `device`, in fp32 and under bf16 autocast;
every reference runs on a float64 copy.
  reference_logits   BERT/RoBERTa: logits and hidden states == the reference encoder with the prefix keys/values
                     concatenated in every layer (positions shifted by P and not; one padded row), eager and SDPA.
  reference_layer0   DeBERTa-v2: the attention adapter's output on layer 0 == disentangled attention over
                     [prefix; tokens] with zero relative-position bias on the prefix columns (the original's).
  masked_prefix      every backbone: a prefix closed by prefix_attention_mask gives the bare backbone's states.
Error = ‖got − ref‖ / ‖ref‖ over real tokens; pass when ≤ TOLERANCE[precision].
"""

from __future__ import annotations

import copy
import inspect
import math

import torch

from benchmarks.common.reference import attend, heads_of, reference_batch, reference_hidden, reference_logits
from benchmarks.gpu.models import autocast_for, load, save_backbone, short_error
from model.loading import load_backbone

TOLERANCE = {"fp32": 1e-5, "bf16": 3e-2}  # relative error vs the float64 reference


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    got, ref = got.double(), ref.double()
    return float((got - ref).norm() / ref.norm().clamp_min(1e-30))


def _case(record: dict, errors: dict, precision: str) -> dict:
    err = max(errors.values())
    tol = TOLERANCE[precision]
    return {**record, "precision": precision, **errors, "rel_err": err, "tol": tol, "pass": bool(err <= tol)}


def reference_bert(model, ids, mask, shift: bool):
    """(hidden (B, T, H), logits (B, labels)) of the reference encoder on a float64 copy of a BERT/RoBERTa model."""
    ref = copy.deepcopy(model).double()
    return reference_hidden(ref, ids, mask, shift, None), reference_logits(ref, ids, mask, shift)


def check_reference_logits(path, device, kind, attn, shift) -> list[dict]:
    model = load(path, device, attn=attn, shift=shift).eval()
    ids, mask = reference_batch(model.config.vocab_size, device=device)
    keep = mask.bool()
    with torch.no_grad():
        want_h, want_logits = reference_bert(model, ids, mask, shift)
        out = []
        for precision in ("fp32", "bf16"):
            with autocast_for(device, precision):
                got_h = model.encode(ids, mask)
                got_logits = model(input_ids=ids, attention_mask=mask).logits
            errors = {
                "rel_err_hidden": rel_err(got_h[keep], want_h[keep]),
                "rel_err_logits": rel_err(got_logits, want_logits),
            }
            record = {"check": "reference_logits", "backbone": kind, "attn": attn, "shift_positions": shift}
            out.append(_case(record, errors, precision))
    return out


def check_deberta_layer0(path, device) -> list[dict]:
    model = load(path, device, attn="eager").eval()
    ids, mask = reference_batch(model.config.vocab_size, device=device)
    attn0 = model.backbone.encoder.layer[0].attention.self
    seen: dict = {}
    handle = attn0.register_forward_hook(
        lambda m, a, kw, out: seen.update(args=a, kwargs=kw, out=out[0]), with_kwargs=True
    )
    sig = inspect.signature(type(attn0).forward)
    ref_attn = copy.deepcopy(attn0).double()
    heads = ref_attn.num_attention_heads
    pos_att = model.config.pos_att_type
    scale_factor = 1 + ("c2p" in pos_att) + ("p2c" in pos_att)
    out = []
    try:
        with torch.no_grad():
            for precision in ("fp32", "bf16"):
                with autocast_for(device, precision):
                    prefixes = model.layer_prefixes(ids.shape[0])
                    model.injector.set(prefixes)
                    model.backbone(input_ids=ids, attention_mask=mask)
                model.injector.set(None)
                a = sig.bind(attn0, *seen["args"], **seen["kwargs"]).arguments
                hidden = a["hidden_states"].double()
                q, k, v = (
                    heads_of(f(hidden), heads)
                    for f in (ref_attn.query_proj, ref_attn.key_proj, ref_attn.value_proj)
                )
                flat = (t.reshape(-1, *t.shape[2:]) for t in (q, k))  # (B·heads, T, d)
                rel = ref_attn.disentangled_attention_bias(
                    *flat, a["relative_pos"], a["rel_embeddings"].double(), scale_factor
                ).view(ids.shape[0], heads, ids.shape[1], ids.shape[1])
                prefix = tuple(t.double() for t in prefixes[0][:2])  # (B, heads, P, d) each
                allowed = a["attention_mask"].bool().expand(ids.shape[0], 1, -1, -1)  # (B, 1, T|1, T)
                want = attend(q, k, v, prefix, allowed, math.sqrt(q.shape[-1] * scale_factor), rel)
                record = {"check": "reference_layer0", "backbone": "deberta-v2", "attn": "adapter"}
                out.append(_case(record, {"rel_err_attention": rel_err(seen["out"], want)}, precision))
    finally:
        handle.remove()
    return out


def check_masked_prefix(path, device, kind, attn) -> list[dict]:
    model = load(path, device, attn=attn, shift=False).eval()
    bare = load_backbone(path, attn_implementation="eager").to(device).double().eval()
    ids, mask = reference_batch(model.config.vocab_size, device=device)
    keep = mask.bool()
    closed = torch.zeros(ids.shape[0], model.pre_seq_len, dtype=torch.bool, device=device)
    out = []
    with torch.no_grad():
        want = bare(input_ids=ids, attention_mask=mask)[0]
        for precision in ("fp32", "bf16"):
            with autocast_for(device, precision):
                got = model.encode(ids, mask, prefix_attention_mask=closed)
                opened = model.encode(ids, mask)
            record = {
                "check": "masked_prefix",
                "backbone": kind,
                "attn": attn if kind != "deberta-v2" else "adapter",
                # an open prefix must move the states by far more than the tolerance, or the check proves nothing
                "prefix_effect": rel_err(opened[keep], want[keep]),
            }
            case = _case(record, {"rel_err_hidden": rel_err(got[keep], want[keep])}, precision)
            case["pass"] = case["pass"] and case["prefix_effect"] > max(1e-3, 10 * case["rel_err"])
            out.append(case)
    return out


def correctness(root: str, device, log=print) -> dict:
    """Every case of the module docstring; a case that raises is recorded as failed with its error."""
    cases: list[dict] = []

    def run(label, fn, *args):
        try:
            cases.extend(fn(*args))
        except Exception as err:  # report, never crash the whole check
            cases.append(
                {"check": label, "args": [str(a) for a in args[2:]], "pass": False, "error": short_error(err)}
            )

    for kind in ("bert", "roberta"):
        path = save_backbone(kind, root)
        for attn in ("eager", "sdpa"):
            for shift in (True, False):
                run("reference_logits", check_reference_logits, path, device, kind, attn, shift)
            run("masked_prefix", check_masked_prefix, path, device, kind, attn)
    path = save_backbone("deberta-v2", root)
    run("reference_layer0", check_deberta_layer0, path, device)
    run("masked_prefix", check_masked_prefix, path, device, "deberta-v2", "eager")
    for c in cases:
        mark = "PASS" if c["pass"] else "FAIL"
        what = f"{c['check']:16} {c.get('backbone', '?'):10} {c.get('attn', ''):7} shift={c.get('shift_positions', '-')!s:5}"
        log(
            f"  {mark} {what} {c.get('precision', '')}: rel err {c.get('rel_err', float('nan')):.2e} {c.get('error', '')}"
        )
    by = {p: [c["pass"] for c in cases if c.get("precision", p) == p] for p in ("fp32", "bf16")}
    return {
        "cases": cases,
        "tolerance": TOLERANCE,
        "all_pass_fp32": all(by["fp32"]),
        "all_pass_bf16": all(by["bf16"]),
        "all_pass": all(c["pass"] for c in cases),
    }
