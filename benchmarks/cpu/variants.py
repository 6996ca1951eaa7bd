"""The models speed.py times: one model + AdamW per variant of a Spec (build), on a shared template backbone.

Variants: finetune (AdamW over every parameter), prefix (P-tuning v2), prefix_projection (--prefix_projection),
prompt, head_only (frozen backbone, only the classifier trains) and frozen (eval only: the backbone and head with no
prefix). --investigate adds finetune_frozen_words and dx_only (see build). The shapes and the batch are
benchmarks/common/spec.py's.
"""

from __future__ import annotations

import copy

import torch
from transformers import AutoConfig, AutoModel

from benchmarks.common.models import adamw, model_args
from benchmarks.common.spec import Spec
from model.loading import load_backbone
from model.utils import TaskType, build_model

TRAIN_VARIANTS = ("finetune", "prefix", "prefix_projection", "prompt", "head_only")
EVAL_VARIANTS = ("frozen", "prefix", "prompt")

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
            _BACKBONES[key] = load_backbone(
                spec.pretrained, config=config, attn_implementation=attn, add_pooling_layer=True
            )
        else:
            config = spec.config(dropout)
            _BACKBONES[key] = AutoModel.from_config(config, attn_implementation=attn, add_pooling_layer=True)
    return copy.deepcopy(_BACKBONES[key])


def clear_backbones() -> None:
    """Drop the template backbones (the RSS worker: a template is not part of the variant's footprint)."""
    _BACKBONES.clear()


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
    args = model_args(
        spec.pretrained or spec.name,
        method,
        pre_seq_len or spec.pre_seq_len,
        attn,
        dropout,
        prefix_projection=variant == "prefix_projection",
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
    if variant == "frozen":
        return model.eval(), None
    return model, adamw(model, optim)
