"""PT-Retrieval's bi-encoder (DPR with P-tuning v2): a question encoder and a passage encoder, one vector each, scored
by a dot product and trained with DPR's NLL over in-batch and hard negatives (/work/shared/PT-RETRIEVAL.md §2, §3.3).

Follows the original's `dpr/models/biencoder.py` (BiEncoder, BiEncoderNllLoss) and `dpr/models/hf_models.py`
(get_bert_biencoder_components), with the tuning method as the method object of model/methods.py:

  --prefix / --prompt  (the backbone frozen) both encoders run on ONE backbone; each is its own method object with its
                       own prefix (prompt). The original loads two frozen copies of BERT: same outputs, twice the
                       memory (tests/test_biencoder.py checks the equality against two copies).
  fine-tuning / BitFit (backbone weights train) two backbone copies, one per encoder, as the original's DPR.

Which case applies is the method class's `trains_backbone`, not its name. The encoders are registered as
`question_model` and `ctx_model`, so a prefix checkpoint's keys read as the original's
(`question_model.prefix_encoder.embedding.weight`, `ctx_model.prefix_encoder.embedding.weight`).

Representation: `cls` (the original) is the last layer's hidden state of the first real token, no pooler, no
projection, no normalisation; `mean` is the attention-masked mean over the real tokens (sentence-transformers
backbones such as all-MiniLM-L6-v2). Similarity: `dot` (the original) or `cos` (the dot product of unit vectors,
no temperature).

Method defaults as the original's prefix model (`dpr/models/prefix.py`): real tokens at positions 0..T-1 (its
`past_key_values_length=0`; `shift_positions=False`), and dropout with p = the backbone's hidden_dropout_prob on the
prefix (`prefix_dropout=None`: the encoder's shared dropout). Prompt mode prepends the prompt to the WORD embeddings
and runs the embedding layer once (model/methods.py PromptTuning), where the original ran it twice (§2.5).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from model.backbones import get_backbone
from model.config import MethodConfig, PTuningError
from model.methods import METHODS
from model.ptuning import init_new_weights

POOLINGS = ("cls", "mean")
SIMILARITIES = ("dot", "cos")
TOWERS = ("question_model", "ctx_model")  # the original's attribute names, hence its checkpoint keys


def retrieval_method_config(
    config,
    method: str = "prefix",
    pre_seq_len: int = 8,
    *,
    prefix_projection: bool = False,
    prefix_hidden_size: int = 512,
    prefix_layers: str | None = None,
    prefix_dropout: float | None = None,
    dropout: float | None = None,
    shift_positions: bool = False,
    prefix_init: str = "normal",
    attn_implementation: str = "sdpa",
) -> MethodConfig:
    """The MethodConfig of one encoder for a backbone of HF config `config`, with PT-Retrieval's defaults: P = 8 (its
    default; its scripts use 64 or 100), positions 0..T-1, no projection (its `--prefix_mlp`, off in every script),
    dropout p = config.hidden_dropout_prob on the prefix (`dropout=None`) unless `prefix_dropout` sets the prefix's
    own rate. `method`: a name in METHODS ('prefix', 'prompt', 'bitfit', 'finetune')."""
    if method not in METHODS:
        raise PTuningError(f"unknown method {method!r}; known: {', '.join(sorted(METHODS))}")
    args = SimpleNamespace(
        pre_seq_len=pre_seq_len, prefix_projection=prefix_projection, prefix_layers=prefix_layers
    )
    return MethodConfig(
        method=method,
        prefix_hidden_size=prefix_hidden_size,
        prefix_dropout=prefix_dropout,
        prefix_init=prefix_init,
        dropout=config.hidden_dropout_prob if dropout is None else dropout,
        shift_positions=shift_positions,
        attn_implementation=attn_implementation,
        **METHODS[method].resolve(args, config),
    )


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """One vector per sequence from hidden states (B, T, H): `cls` the first token's, `mean` the mean over the tokens
    whose attention_mask (B, T) is 1 (all tokens when it is None). Returns (B, H)."""
    if how == "cls":
        return hidden[:, 0]  # (B, H)
    if how != "mean":
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {how!r}")
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (B, H), as sentence-transformers


def similarity(q: torch.Tensor, p: torch.Tensor, how: str = "dot") -> torch.Tensor:
    """Scores (B, N) of questions q (B, H) against passages p (N, H): `dot` q·p, `cos` q·p / (|q| |p|)."""
    if how == "cos":
        q, p = F.normalize(q, dim=-1), F.normalize(p, dim=-1)
    elif how != "dot":
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {how!r}")
    return q @ p.T  # (B, N)


@dataclass
class NllLoss:
    loss: torch.Tensor  # () the mean NLL of each question's positive
    correct: torch.Tensor  # () long: questions whose positive scores highest
    scores: torch.Tensor  # (B, N)


def nll_loss(scores: torch.Tensor, positive_idx: torch.Tensor) -> NllLoss:
    """DPR's BiEncoderNllLoss (`biencoder.py:168-189`): scores (B, N) of every question against every passage of
    the batch (each question's positive and hard negatives; the others' are in-batch negatives), positive_idx (B,)
    the column of question i's positive. L = -(1/B) Σ_i log softmax(scores[i])[positive_idx[i]]; `correct` counts
    the rows whose argmax is the positive, as the original's rank count."""
    log_probs = F.log_softmax(scores, dim=1)  # (B, N)
    loss = F.nll_loss(log_probs, positive_idx, reduction="mean")
    correct = (log_probs.argmax(dim=1) == positive_idx).sum()
    return NllLoss(loss, correct, scores)


class Encoder(nn.Module):
    """One encoder of the bi-encoder: a method object (model/methods.py) on a backbone, and the pooling.

    The method builds its modules on this module under their checkpoint names (`prefix_encoder`, `prompt_encoder`)
    and reads `backbone`, `config`, `quirks`, `method_config` and `dropout` from it, as from a PTuningModel. With
    `own_backbone` the backbone is registered here (it trains); otherwise it is only referenced, and the BiEncoder
    that shares it registers it once.
    """

    def __init__(self, backbone: nn.Module, method_config: MethodConfig, pooling: str, own_backbone: bool):
        super().__init__()
        if own_backbone:
            self.backbone = backbone
        else:  # a plain attribute, not a submodule: not in parameters(), state_dict() or .to() of this module
            object.__setattr__(self, "backbone", backbone)
        self.config, self.method_config, self.pooling = backbone.config, method_config, pooling
        self.quirks = get_backbone(self.config)
        self.dropout = nn.Dropout(method_config.dropout)  # on the prefix, as the original's get_prompt
        self._pretrained = {id(p) for p in backbone.parameters()}
        self.method_impl = METHODS[method_config.method](self)

    def init_new_weights(self) -> None:
        """N(0, initializer_range) weights, zero biases for the method's new modules, as HF's init gave the
        original's prefix embedding (§2.6); then --prefix_init."""
        init_new_weights(self, self._pretrained, self.config.initializer_range)
        self.method_impl.initialise(self.method_config.prefix_init, self.backbone)

    def set_trainable(self) -> None:
        """requires_grad as the method says (the backbone's names start with `backbone.`; a shared one is not here)."""
        for name, param in self.named_parameters():
            param.requires_grad_(self.method_impl.trains(name))

    def hidden(self, inputs: dict) -> torch.Tensor:
        """The backbone's hidden states of the real tokens (B, T, H) under this encoder's method."""
        return self.method_impl.encode(self.backbone, inputs)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """One vector per sequence, (B, H). Inputs (B, T); the original passes all-zero token types."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return pool(self.hidden(inputs), attention_mask, self.pooling)


@dataclass
class BiEncoderOutput(ModelOutput):
    """A dict as HF Trainer reads it (`outputs["loss"]`); fields left None are not keys."""

    loss: torch.Tensor | None = None  # () with positive_idx
    correct: torch.Tensor | None = None  # () long with positive_idx
    scores: torch.Tensor | None = None  # (B, N)
    q: torch.Tensor | None = None  # (B, H)
    p: torch.Tensor | None = None  # (N, H)


class BiEncoder(nn.Module):
    """Question and passage encoders over `backbone` (an AutoModel, e.g. from model/loading.py load_backbone).

    BiEncoder(backbone, method_config, pooling="cls", similarity="dot"):
      method_config  one encoder's method (retrieval_method_config); both encoders get it, each its own weights
      pooling        "cls" | "mean"; similarity "dot" | "cos"
    encode_questions / encode_passages(input_ids, attention_mask=None, token_type_ids=None) -> (B, H); inputs (B, T).
    forward(questions, passages, positive_idx=None) -> BiEncoderOutput (a ModelOutput): scores (B, N), q (B, H),
      p (N, H) and, with positive_idx (B,), DPR's loss and correct count first (nll_loss); questions / passages are
      dicts of the encode_* arguments.
    Frozen-backbone methods share `backbone` (registered once, as `backbone`); backbone-training methods give the
    passage encoder a deep copy of it (`question_model.backbone`, `ctx_model.backbone`).
    """

    accepts_loss_kwargs = False  # the loss is a mean over the batch

    def __init__(
        self, backbone: nn.Module, method_config: MethodConfig, pooling: str = "cls", similarity: str = "dot"
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")
        self.config, self.method_config = backbone.config, method_config
        self.pooling, self.similarity = pooling, similarity
        separate = METHODS[method_config.method].trains_backbone
        if not separate:
            self.backbone = backbone  # the one frozen copy both encoders run on
        # the passage copy is taken before any method touches the backbone (the prefix attaches its injector to it)
        backbones = [backbone, copy.deepcopy(backbone)] if separate else [backbone, backbone]
        for name, own in zip(TOWERS, backbones, strict=True):
            setattr(self, name, Encoder(own, method_config, pooling, own_backbone=separate))
        for encoder in self.encoders():
            encoder.init_new_weights()
        self.set_trainable()

    def encoders(self) -> tuple[Encoder, Encoder]:
        return self.question_model, self.ctx_model

    def set_trainable(self) -> None:
        """What the method trains in each encoder; a shared backbone is frozen."""
        if hasattr(self, "backbone"):
            self.backbone.requires_grad_(False)
        for encoder in self.encoders():
            encoder.set_trainable()

    # training/retrieval_eval.py's encode_fn: pass these bound methods, not the encoder modules. Their owner is this
    # model, so evaluation's eval() and its cache fingerprint (state_dict) cover the shared backbone, which an
    # encoder of a frozen-backbone method only references.
    def encode_questions(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        return self.question_model(input_ids, attention_mask, token_type_ids)  # (B, H)

    def encode_passages(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        return self.ctx_model(input_ids, attention_mask, token_type_ids)  # (N, H)

    def forward(
        self, questions: dict, passages: dict, positive_idx: torch.Tensor | None = None
    ) -> BiEncoderOutput:
        q, p = self.encode_questions(**questions), self.encode_passages(**passages)
        scores = similarity(q, p, self.similarity)  # (B, N)
        if positive_idx is None:
            return BiEncoderOutput(scores=scores, q=q, p=p)
        out = nll_loss(scores, positive_idx)
        return BiEncoderOutput(loss=out.loss, correct=out.correct, scores=scores, q=q, p=p)

    def num_parameters(self, only_trainable: bool = False) -> int:
        """Parameter count, a shared backbone once (the HF Trainer calls this for its FLOP estimate)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)
