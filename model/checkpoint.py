"""The checkpoint format: the model's state_dict, reduced to what the method saves, plus a meta record.

What is saved is the method's choice (model/methods.py `Method.saves`): the prompt/prefix and the head when the
backbone is frozen, everything when fine-tuning. The meta record `ptuning_meta` (JSON as a uint8 tensor, so that
safetensors and the HF Trainer carry it like any tensor) holds the backbone sizes, the identifying fields of the
MethodConfig, the head and its label count. Loading compares it with the model's own and refuses a checkpoint of
another backbone or setting with one clear error, before any tensor is copied.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from model.config import PTuningError

META_KEY = "ptuning_meta"


def meta(model) -> dict:
    """What a checkpoint of `model` was built for: backbone sizes (HF config), method, head."""
    config = model.config
    return {
        "model_type": config.model_type,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        **model.method_config.checkpoint_fields(),
        "task_type": model.task_type,
        "num_labels": config.num_labels,
    }


def state_dict(model, destination=None, prefix: str = "", keep_vars: bool = False) -> dict:
    """The saved part of `model`'s state_dict (keys under `prefix`) and the meta record."""
    full = nn.Module.state_dict(model, prefix=prefix, keep_vars=keep_vars)
    out = {k: v for k, v in full.items() if model.method_impl.saves(k[len(prefix) :])}
    out[prefix + META_KEY] = torch.tensor(
        list(json.dumps(meta(model), sort_keys=True).encode()), dtype=torch.uint8
    )
    if destination is not None:
        destination.update(out)
        return destination
    return out


def load_state_dict(model, state_dict, strict: bool = True, assign: bool = False):
    """Check the meta record, then load the saved tensors; `strict`: exactly the keys `state_dict()` would save."""
    state_dict = dict(state_dict)
    record = state_dict.pop(META_KEY, None)
    if record is None:
        raise PTuningError("not a P-tuning checkpoint (no ptuning_meta record): save it with this project.")
    saved, own = json.loads(bytes(record.tolist()).decode()), meta(model)
    diffs = {k: (saved.get(k), v) for k, v in own.items() if saved.get(k) != v}
    if diffs:
        lines = ", ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in sorted(diffs.items()))
        raise PTuningError(
            f"this checkpoint was trained for another backbone or setting ({lines}); load it onto "
            "the backbone and flags it was trained with."
        )
    expected = {k for k in nn.Module.state_dict(model) if model.method_impl.saves(k)}
    missing = sorted(expected - state_dict.keys())
    unexpected = sorted(state_dict.keys() - expected)
    if strict and (missing or unexpected):
        raise PTuningError(f"checkpoint mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    result = nn.Module.load_state_dict(model, state_dict, strict=False, assign=assign)
    return type(result)(missing, list(result.unexpected_keys))
