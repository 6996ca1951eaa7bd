"""Backbone quirks, one row per `config.model_type`. Sizes always come from the HF config, never from here.

position_style — how the real tokens' absolute positions are numbered (a key of POSITION_STYLES below), needed to
  reproduce the original's shift of positions by P (transformers 4.11 took the prefix length as a cache length):
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

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Backbone:
    position_style: str = "absolute"
    pooler: str = "backbone"
    attention: str = "interface"
    # tokenizer flag for pre-split words (NER/SRL), as the original's ADD_PREFIX_SPACE
    add_prefix_space: bool = False
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


# -- absolute positions shifted by P ----------------------------------------------------------------------------------
def _absolute(config, input_ids: torch.Tensor, P: int) -> torch.Tensor:
    batch, T = input_ids.shape
    return torch.arange(P, P + T, device=input_ids.device).expand(batch, T)  # (B, T): P..P+T-1


def _padding_offset(config, input_ids: torch.Tensor, P: int) -> torch.Tensor:
    pad = config.pad_token_id
    mask = input_ids.ne(pad).int()  # (B, T)
    return (torch.cumsum(mask, dim=1) + P) * mask + pad  # (B, T): pad+1+P ..; pads keep padding_idx


@dataclass(frozen=True)
class PositionStyle:
    offset: Callable  # config -> positions before the first real token (unshifted)
    shifted_ids: (
        Callable | None
    )  # (config, input_ids (B, T), P) -> position_ids (B, T); None: no absolute positions


POSITION_STYLES: dict[str, PositionStyle] = {
    "absolute": PositionStyle(lambda config: 0, _absolute),
    "padding_offset": PositionStyle(lambda config: config.pad_token_id + 1, _padding_offset),
    "relative": PositionStyle(lambda config: 0, None),
}


def position_room(row: Backbone, config) -> int | None:
    """How many positions P + T may fill in the backbone's position table; None: no limit (relative positions)."""
    style = POSITION_STYLES[row.position_style]
    limit = getattr(config, "max_position_embeddings", None)
    if style.shifted_ids is None or limit is None:
        return None
    return limit - style.offset(config)


def shifted_position_ids(row: Backbone, config, input_ids: torch.Tensor, P: int) -> torch.Tensor | None:
    """Absolute positions of the real tokens shifted by P, as the original (transformers 4.11) ran them: (B, T);
    None for a backbone without absolute positions."""
    style = POSITION_STYLES[row.position_style]
    return None if style.shifted_ids is None else style.shifted_ids(config, input_ids, P)


def row_position_ids(
    row: Backbone, config, input_ids: torch.Tensor, offsets: torch.Tensor
) -> torch.Tensor | None:
    """`shifted_position_ids` with a shift per row: row r of input_ids (R, T) shifted by offsets[r] (R,); None for a
    backbone without absolute positions (model/multi_adapter.py: each row shifted by its own adapter's P)."""
    if POSITION_STYLES[row.position_style].shifted_ids is None:
        return None
    positions = torch.empty_like(input_ids)
    for P in offsets.unique().tolist():
        rows = (offsets == P).nonzero().squeeze(1)
        positions[rows] = shifted_position_ids(row, config, input_ids[rows], int(P))
    return positions  # (R, T)
