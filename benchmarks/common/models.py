"""The model arguments and the optimizer every benchmark builds its variants with.

A variant is run.py's model for one method: `model_args` is the ModelArguments a run.py command line would give
(get_model / build_model take it), `adamw` HF Trainer's optimizer over what trains.
"""

from __future__ import annotations

import torch

from arguments import ModelArguments

# AdamW implementations: "fused" is HF Trainer's default (adamw_torch_fused)
ADAMW_KINDS = {"fused": {"fused": True}, "foreach": {"foreach": True}, "forloop": {"foreach": False}}


def model_args(path: str, method: str, pre_seq_len: int, attn: str = "sdpa", dropout: float = 0.1, **flags):
    """ModelArguments for `method` ("prefix", "prompt" or "finetune"); `flags` are further ModelArguments fields
    (prefix_projection, shift_positions, backbone_dtype, ...). `dropout` is --hidden_dropout_prob."""
    return ModelArguments(
        model_name_or_path=path,
        **{flag: flag == method for flag in ModelArguments.METHOD_FLAGS},  # none set: fine-tuning
        pre_seq_len=pre_seq_len,
        attn_implementation=attn,
        hidden_dropout_prob=dropout,
        **flags,
    )


def adamw(model, kind: str = "fused") -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters: lr 1e-5, no weight decay (the step's cost does not depend on
    either); `kind` from ADAMW_KINDS."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.0, **ADAMW_KINDS[kind])
