"""The models speed.py times: backbone shapes (Spec), one model + AdamW per variant (build), the padded batch.

Variants: finetune (AdamW over every parameter), prefix (P-tuning v2), prefix_projection (--prefix_projection),
prompt, head_only (frozen backbone, only the classifier trains) and frozen (eval only: the backbone and head with no
prefix). --investigate adds finetune_frozen_words and dx_only (see build).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from transformers import AutoConfig, AutoModel, BertConfig

from arguments import ModelArguments
from benchmarks.paths import minilm_path
from model.utils import TaskType, build_model, load_backbone

TRAIN_VARIANTS = ("finetune", "prefix", "prefix_projection", "prompt", "head_only")
EVAL_VARIANTS = ("frozen", "prefix", "prompt")


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


# The headline config: its ratios are the ones checked against speed_report.TARGETS.
BERT_4x256 = Spec("bert-4x256-random")
# bert-base-uncased's shape, random weights
BERT_BASE = Spec("bert-base-12x768-random", layers=12, hidden=768, heads=12, ffn=3072)
TINY = Spec(
    "tiny-2x32-random", batch=4, seq_len=16, pre_seq_len=4, layers=2, hidden=32, heads=4, ffn=64, vocab=200
)


def minilm_spec() -> Spec | None:
    """The packaged all-MiniLM-L6-v2 at the headline batch shape; None when the package is not installed."""
    try:
        path = minilm_path()
    except ImportError:
        return None
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
            # dropout 0.1 everywhere by default (BERT's)
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
            )
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
    """B rows padded to T, as --pad_to_max_length batches are: random lengths in [T/2, T], row 0 full."""
    T, B = seq_len or spec.seq_len, spec.batch
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(1000, spec.vocab // 2), spec.vocab, (B, T), generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)
    ids = ids.masked_fill(mask == 0, 0)  # BERT's [PAD] = 0
    labels = torch.randint(0, spec.num_labels, (B,), generator=g)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
