"""Backbone quirks, one row per `config.model_type`. Sizes always come from the HF config, never from here.

position_style — how the real tokens' absolute positions are numbered, needed to reproduce the original's shift
  of positions by P (transformers 4.11 took the prefix length as a cache length):
    "absolute":       0..T-1 (BERT, ELECTRA, ALBERT)
    "padding_offset": padding_idx+1 .. (RoBERTa family), padding tokens keep padding_idx
    "relative":       no absolute positions (DeBERTa with position_biased_input=False): nothing to shift
pooler — what sequence classification / multiple choice pool with, as the original did:
    "backbone": the backbone's own pretrained pooler (dense+tanh over the first token), frozen in prefix mode
    "context":  DeBERTa's ContextPooler, a new trainable layer
attention — how prefixes reach attention: "interface" (transformers' AttentionInterface, any model that routes
  through it) or the name of an adapter in model/injection.py for models that do not (DeBERTa v1, v2/v3).
shared_layers — ALBERT: one layer's weights run at every depth, so the depth (and with it the depth's own prefix)
  comes from the encoder loop that model/injection.py puts in place, not from the attention module.
Every row is pinned against a hand-written reference by tests/test_backbones.py (which fails if a row is untested).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backbone:
    position_style: str = "absolute"
    pooler: str = "backbone"
    attention: str = "interface"
    add_prefix_space: bool = (
        False  # tokenizer flag for pre-split words (NER/SRL), as the original's ADD_PREFIX_SPACE
    )
    use_fast_tokenizer: bool = True  # the original's USE_FAST (its deberta-v2 tokenizer was slow)
    shared_layers: bool = False


BACKBONES: dict[str, Backbone] = {
    "bert": Backbone(),
    "electra": Backbone(pooler="context"),
    "albert": Backbone(shared_layers=True),
    "roberta": Backbone(position_style="padding_offset", add_prefix_space=True),
    "xlm-roberta": Backbone(position_style="padding_offset", add_prefix_space=True),
    "camembert": Backbone(position_style="padding_offset", add_prefix_space=True),
    "deberta": Backbone(
        position_style="relative", pooler="context", attention="deberta", add_prefix_space=True
    ),
    "deberta-v2": Backbone(
        position_style="relative", pooler="context", attention="deberta-v2", add_prefix_space=True
    ),
}


def get_backbone(config) -> Backbone:
    """The quirks row of `config.model_type`; DeBERTa with absolute positions shifts like BERT."""
    if config.model_type not in BACKBONES:
        raise ValueError(
            f"model_type {config.model_type!r} is not supported; supported: {', '.join(sorted(BACKBONES))}. "
            "An encoder whose attention goes through transformers' AttentionInterface needs one row in "
            "model/backbones.py."
        )
    row = BACKBONES[config.model_type]
    if row.position_style == "relative" and getattr(config, "position_biased_input", False):
        row = Backbone(**{**row.__dict__, "position_style": "absolute"})
    return row
