"""Correctness half of benchmarks/gpu_check.py: hand-written references, on any device (the SDPA probe: gpu_sdpa.py).

Same checks as tests/test_model.py §2-3, written here again so the GPU run needs nothing from tests/: tiny random
backbones (2 layers × 128, 2 heads of 64 = roberta-large's head size) saved to a temporary folder and loaded through
the project's own get_model, on `device`, in fp32 and under bf16 autocast; every reference runs on a float64 copy.
  reference_logits   BERT/RoBERTa: logits and hidden states == a plain-PyTorch encoder with the prefix keys/values
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
import os

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, BertConfig, DebertaV2Config, RobertaConfig

from arguments import ModelArguments
from model.utils import TaskType, get_model, load_backbone

P, B, T = 6, 3, 10
TOLERANCE = {"fp32": 1e-5, "bf16": 3e-2}  # relative error vs the float64 reference
AMP = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_SIZES = dict(
    vocab_size=120,
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=256,
    max_position_embeddings=64,
    num_labels=3,
    pad_token_id=1,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
CONFIGS = {
    "bert": lambda **kw: BertConfig(**{**_SIZES, **kw}),
    "roberta": lambda **kw: RobertaConfig(**{**_SIZES, **kw}),
    "deberta-v2": lambda **kw: DebertaV2Config(
        **{**_SIZES, **kw},
        relative_attention=True,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        max_relative_positions=16,
        position_buckets=8,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
    ),
}


# -- building through get_model -----------------------------------------------------------------------------------
def save_backbone(kind: str, root: str, seed: int = 0, **config_kw) -> str:
    """A random backbone from CONFIGS[kind] saved as a local model folder (what --model_name_or_path takes)."""
    tag = "".join(f"-{k}{v}" for k, v in sorted(config_kw.items()))
    path = os.path.join(root, f"{kind}-{seed}{tag}")
    if not os.path.isdir(path):
        torch.manual_seed(seed)
        AutoModel.from_config(CONFIGS[kind](**config_kw)).save_pretrained(path)
    return path


def load(
    path,
    device,
    method="prefix",
    attn="sdpa",
    shift=True,
    dropout=0.0,
    seed=1,
    scale_prefix=True,
    config_kw=None,
    **flags,
):
    """get_model(...) for sequence classification, on `device`; with scale_prefix the prefix weights are drawn
    N(0, 1) instead of N(0, 0.02), so that a wrong prefix shows far above the tolerance. config_kw overrides the
    saved config (e.g. fewer layers: the folder's extra layers are then not loaded)."""
    args = ModelArguments(
        model_name_or_path=path,
        prefix=method == "prefix",
        prompt=method == "prompt",
        pre_seq_len=flags.pop("pre_seq_len", P),
        attn_implementation=attn,
        hidden_dropout_prob=dropout,
        shift_positions=shift,
        **flags,
    )
    torch.manual_seed(seed)
    model = get_model(
        args, TaskType.SEQUENCE_CLASSIFICATION, AutoConfig.from_pretrained(path, **(config_kw or {}))
    )
    if method == "prefix" and scale_prefix:
        with torch.no_grad():
            model.prefix_encoder.embedding.weight.normal_()
    return model.to(device)


def make_batch(vocab: int, device, batch: int = B, seq_len: int = T, padded: bool = True, seed: int = 0):
    """(input_ids, attention_mask): random ids >= 3; with `padded`, row 1 is padding (id 1) after 60 %."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, seq_len), generator=g)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    if padded:
        cut = max(1, int(0.6 * seq_len))
        mask[min(1, batch - 1), cut:] = 0
        ids[min(1, batch - 1), cut:] = 1  # pad id of every config here
    return ids.to(device), mask.to(device)


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    got, ref = got.double(), ref.double()
    return float((got - ref).norm() / ref.norm().clamp_min(1e-30))


def autocast_for(device, precision):
    dtype = AMP[precision]
    return torch.autocast(torch.device(device).type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


# -- references -----------------------------------------------------------------------------------------------------
def reference_bert(model, ids, mask, shift: bool):
    """Plain-PyTorch BERT/RoBERTa on the model's (float64-copied) weights: (hidden (B, T, H), logits (B, labels))."""
    bb, cfg = model.backbone, model.config
    heads, H, L = cfg.num_attention_heads, cfg.hidden_size, cfg.num_hidden_layers
    d, Pn = H // heads, model.pre_seq_len
    batch, seq = ids.shape
    if cfg.model_type == "roberta":  # padding_idx + 1 + index among real tokens, pads keep padding_idx
        keep = ids.ne(cfg.pad_token_id).long()
        pos = (torch.cumsum(keep, 1) + (Pn if shift else 0)) * keep + cfg.pad_token_id
    else:
        pos = torch.arange(seq, device=ids.device).expand(batch, seq) + (Pn if shift else 0)
    emb = bb.embeddings
    x = (
        emb.word_embeddings(ids)
        + emb.position_embeddings(pos)
        + emb.token_type_embeddings(torch.zeros_like(ids))
    )
    x = emb.LayerNorm(x)  # (B, T, H)
    prefix = model.prefix_encoder().view(Pn, L, 2, heads, d)  # (P, layer, key/value, heads, d)
    neg = torch.finfo(x.dtype).min
    # (B, P + T): the prefix columns always open
    bias = torch.cat([x.new_zeros(batch, Pn), (1.0 - mask.to(x.dtype)) * neg], 1)

    def heads_of(t):
        return t.view(batch, -1, heads, d).transpose(1, 2)  # (B, heads, n, d)

    for i, layer in enumerate(bb.encoder.layer):
        att = layer.attention.self
        q, k, v = heads_of(att.query(x)), heads_of(att.key(x)), heads_of(att.value(x))
        pk = prefix[:, i, 0].permute(1, 0, 2).expand(batch, heads, Pn, d)  # (B, heads, P, d)
        pv = prefix[:, i, 1].permute(1, 0, 2).expand(batch, heads, Pn, d)
        k, v = torch.cat([pk, k], 2), torch.cat([pv, v], 2)  # (B, heads, P + T, d)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + bias[:, None, None, :]  # (B, heads, T, P + T)
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, seq, H)  # (B, T, H)
        x = layer.attention.output.LayerNorm(layer.attention.output.dense(ctx) + x)
        x = layer.output.LayerNorm(layer.output.dense(F.gelu(layer.intermediate.dense(x))) + x)
    return x, model.classifier(torch.tanh(bb.pooler.dense(x[:, 0])))


def reference_deberta_attention(module, hidden, mask4d, pk, pv, rel_bias, scale_factor: int):
    """DeBERTa-v2 disentangled attention over [prefix; tokens]; prefix columns get zero relative bias."""
    batch, seq, H = hidden.shape
    heads, Pn = module.num_attention_heads, pk.shape[2]
    d = H // heads

    def heads_of(t):
        return t.view(batch, -1, heads, d).transpose(1, 2)  # (B, heads, n, d)

    q, k, v = (
        heads_of(module.query_proj(hidden)),
        heads_of(module.key_proj(hidden)),
        heads_of(module.value_proj(hidden)),
    )
    scores = q @ torch.cat([pk, k], 2).transpose(-1, -2) / math.sqrt(d * scale_factor)  # (B, heads, T, P + T)
    scores = scores + torch.cat([rel_bias.new_zeros(batch, heads, seq, Pn), rel_bias], -1)
    open_prefix = torch.ones(batch, 1, seq, Pn, dtype=torch.bool, device=hidden.device)
    allowed = torch.cat([open_prefix, mask4d.bool().expand(batch, 1, seq, seq)], -1)
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    return (scores.softmax(-1) @ torch.cat([pv, v], 2)).transpose(1, 2).reshape(batch, seq, H)  # (B, T, H)


# -- the checks -----------------------------------------------------------------------------------------------------
def _case(record: dict, errors: dict, precision: str) -> dict:
    err = max(errors.values())
    tol = TOLERANCE[precision]
    return {**record, "precision": precision, **errors, "rel_err": err, "tol": tol, "pass": bool(err <= tol)}


def check_reference_logits(path, device, kind, attn, shift) -> list[dict]:
    model = load(path, device, attn=attn, shift=shift).eval()
    ids, mask = make_batch(model.config.vocab_size, device)
    keep = mask.bool()
    with torch.no_grad():
        want_h, want_logits = reference_bert(copy.deepcopy(model).double(), ids, mask, shift)
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
    ids, mask = make_batch(model.config.vocab_size, device)
    attn0 = model.backbone.encoder.layer[0].attention.self
    seen: dict = {}
    handle = attn0.register_forward_hook(
        lambda m, a, kw, out: seen.update(args=a, kwargs=kw, out=out[0]), with_kwargs=True
    )
    sig = inspect.signature(type(attn0).forward)
    ref_attn = copy.deepcopy(attn0).double()
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
                q = ref_attn.transpose_for_scores(ref_attn.query_proj(hidden), ref_attn.num_attention_heads)
                k = ref_attn.transpose_for_scores(ref_attn.key_proj(hidden), ref_attn.num_attention_heads)
                rel = ref_attn.disentangled_attention_bias(
                    q, k, a["relative_pos"], a["rel_embeddings"].double(), scale_factor
                ).view(ids.shape[0], ref_attn.num_attention_heads, ids.shape[1], ids.shape[1])
                pk, pv = (t.double() for t in prefixes[0][:2])
                want = reference_deberta_attention(
                    ref_attn, hidden, a["attention_mask"], pk, pv, rel, scale_factor
                )
                record = {"check": "reference_layer0", "backbone": "deberta-v2", "attn": "adapter"}
                out.append(_case(record, {"rel_err_attention": rel_err(seen["out"], want)}, precision))
    finally:
        handle.remove()
    return out


def check_masked_prefix(path, device, kind, attn) -> list[dict]:
    model = load(path, device, attn=attn, shift=False).eval()
    bare = load_backbone(path, attn_implementation="eager").to(device).double().eval()
    ids, mask = make_batch(model.config.vocab_size, device)
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


def short_error(err: BaseException, n: int = 300) -> str:
    text = f"{type(err).__name__}: {err}".replace("\n", " ")
    return text[:n]
