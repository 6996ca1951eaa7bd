"""Which SDPA kernel runs (section 2 of benchmarks/gpu_check.py): the dispatcher's choice for the prefix model and
the bare one, and each backend forced alone."""

from __future__ import annotations

import contextlib
import warnings

import torch
import torch.nn.functional as F

from benchmarks.common.reference import reference_batch
from benchmarks.common.tiny import TINY_SIZES
from benchmarks.gpu.models import autocast_for, load, save_backbone, short_error


def _backends():
    from torch.nn.attention import SDPBackend

    names = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH")
    return {n: getattr(SDPBackend, n) for n in names if hasattr(SDPBackend, n)}


@contextlib.contextmanager
def record_sdpa_choice(seen: list):
    """Patch F.scaled_dot_product_attention (transformers looks it up per call) to log the dispatcher's choice."""
    from torch.nn.attention import SDPBackend

    by_value = {int(b): n for n, b in SDPBackend.__members__.items()}
    original = F.scaled_dot_product_attention

    def recording(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, **kw):
        try:
            extra = {k: v for k, v in kw.items() if k in ("scale", "enable_gqa")}
            choice = torch._fused_sdp_choice(query, key, value, attn_mask, dropout_p, is_causal, **extra)
            name = by_value.get(int(choice), str(choice))
        except Exception as err:
            name = f"unknown ({type(err).__name__})"
        mask = (
            None if attn_mask is None else f"{tuple(attn_mask.shape)} {attn_mask.dtype}".replace("torch.", "")
        )
        seen.append(
            {
                "backend": name,
                "q": list(query.shape),
                "k": list(key.shape),
                "mask": mask,
                "dropout_p": dropout_p,
            }
        )
        return original(
            query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, **kw
        )

    F.scaled_dot_product_attention = recording
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def sdpa_probe(root: str, device, log=print) -> dict:
    """RoBERTa 2 × 256 (4 heads of 64, dropout 0.1 as roberta-large): which kernel SDPA picks for the prefix model and
    the bare one, with a padded batch (a 4-D mask over [prefix; tokens]) and without padding (no mask), in fp32 and
    bf16, training (forward + backward) and eval; then each backend forced alone: ok or its error/warning."""
    path = save_backbone(
        "roberta",
        root,
        hidden_size=256,
        num_attention_heads=4,
        intermediate_size=512,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    from torch.nn.attention import sdpa_kernel

    models = {m: load(path, device, method=m, attn="sdpa", dropout=0.1) for m in ("prefix", "finetune")}
    cases = []
    for precision in ("fp32", "bf16"):
        for padded in (True, False):
            ids, mask = reference_batch(
                TINY_SIZES["vocab_size"], batch=4, seq_len=32, padded=padded, device=device
            )
            for mode in ("train", "eval"):
                for name, model in models.items():
                    model.train(mode == "train")

                    def step(model=model, ids=ids, mask=mask, mode=mode, precision=precision):
                        with torch.set_grad_enabled(mode == "train"), autocast_for(device, precision):
                            out = model(
                                input_ids=ids, attention_mask=mask, labels=torch.zeros_like(ids[:, 0])
                            )
                        if mode == "train":
                            out.loss.backward()
                            model.zero_grad(set_to_none=True)

                    seen: list = []
                    case = {"precision": precision, "padded_batch": padded, "mode": mode, "model": name}
                    try:
                        with record_sdpa_choice(seen):
                            step()
                        case["dispatcher_choice"] = sorted({s["backend"] for s in seen})
                        case["calls"] = seen[:1]  # shapes of layer 0's call; every layer has the same
                    except Exception as err:
                        case["dispatcher_choice"], case["error"] = [], short_error(err)
                    case["forced"] = {}
                    for bname, backend in _backends().items():
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always")
                            try:
                                with sdpa_kernel([backend]):
                                    step()
                                result = "ok"
                            except Exception as err:
                                why = " | ".join(
                                    str(w.message).split(" (Triggered internally")[0].strip()[:160]
                                    for w in caught[:4]
                                )
                                result = f"error: {short_error(err)}" + (f" [warnings: {why}]" if why else "")
                        case["forced"][bname] = result
                    cases.append(case)
                    ok = ",".join(b for b, r in case["forced"].items() if r == "ok")
                    log(
                        f"  sdpa {precision} {'padded' if padded else 'no-pad'} {mode:5} {name:8}: dispatcher "
                        f"{'/'.join(case['dispatcher_choice']) or '?'}; alone ok: {ok}"
                    )
    return {"config": "roberta 2 x 256, 4 heads of 64, P=6, B=4, T=32, dropout 0.1", "cases": cases}
