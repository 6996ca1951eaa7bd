"""The trainable prompt parameters. Follows the original model/prefix_encoder.py."""

from __future__ import annotations

import os

import torch
from torch import nn

from model.config import MethodConfig


class PrefixEncoder(nn.Module):
    """P-tuning v2 prefix: P virtual tokens -> one key and one value vector per prefixed layer.

    Without projection: Embedding(P, 2·L·H), i.e. every layer's key/value prefix is a free parameter.
    With projection (prefix-tuning's reparameterisation): Embedding(P, H) -> Linear(H, h) -> Tanh -> Linear(h, 2·L·H).
    L is the number of prefixed layers (`method.prefix_layers`), H = heads × head_dim of the backbone's attention.
    The encoder owns the layout: a row of the table is [layer l₀: key (heads·d) | value (heads·d)][layer l₁: ...] ...,
    the original's past_key_values view; `layer_prefixes` cuts it into per-layer (key, value) for the injector.
    """

    def __init__(self, method: MethodConfig, config):
        super().__init__()
        self.method_config = method  # P, the prefixed layers, projection: read from here, not copied
        self.num_hidden_layers, self.heads = config.num_hidden_layers, config.num_attention_heads
        self.head_dim = getattr(config, "attention_head_size", None) or config.hidden_size // self.heads
        P, out_dim = method.pre_seq_len, 2 * len(method.prefix_layers) * self.heads * self.head_dim
        self.projection = method.prefix_projection
        if self.projection:
            self.embedding = nn.Embedding(P, config.hidden_size)
            self.trans = nn.Sequential(
                nn.Linear(config.hidden_size, method.prefix_hidden_size),
                nn.Tanh(),
                nn.Linear(method.prefix_hidden_size, out_dim),
            )
        else:
            self.embedding = nn.Embedding(P, out_dim)
        self.register_buffer("prefix_ids", torch.arange(P), persistent=False)
        # --prefix_dropout: the prefix's own rate; None: the model's shared dropout (the original's behaviour)
        self.dropout = None if method.prefix_dropout is None else nn.Dropout(method.prefix_dropout)

    def forward(self) -> torch.Tensor:
        """The prefix of every layer, computed once per forward: (P, 2·L·H). It is shared by the whole batch."""
        prefix = self.embedding(self.prefix_ids)  # (P, H) or (P, 2·L·H)
        return self.trans(prefix) if self.projection else prefix

    def zero_(self) -> None:
        """--prefix_init zeros: the output becomes exactly 0 while every parameter can still move: the table, or with
        the projection the MLP's last layer (weight and bias; the tanh layer's output stays nonzero, so the last
        layer's gradient is too)."""
        last = self.trans[-1] if self.projection else self.embedding
        with torch.no_grad():
            for param in last.parameters():
                param.zero_()

    def layer_prefixes(self, batch: int, prefix_attention_mask=None, shared_dropout=None) -> list:
        """Per backbone layer: (key, value, mask) with key/value (B, heads, P, d) expanded, not copied; or None for a
        layer without prefix. `prefix_attention_mask` (B, P) bool: the prefix slots a query may attend to (None:
        all). Dropout: the encoder's own (--prefix_dropout), else `shared_dropout`."""
        P, layers = self.method_config.pre_seq_len, self.method_config.prefix_layers
        heads, d = self.heads, self.head_dim
        drop = self.dropout if self.dropout is not None else shared_dropout
        prefix = self()  # (P, 2·L'·heads·d)
        if drop is not None:
            prefix = drop(prefix)
        prefix = prefix.view(P, len(layers), 2, heads, d)  # (P, L', key/value, heads, d)
        prefix = prefix.permute(1, 2, 3, 0, 4)  # (L', 2, heads, P, d)
        per_layer: list = [None] * self.num_hidden_layers
        for i, layer in enumerate(layers):
            key, value = prefix[i, 0], prefix[i, 1]  # (heads, P, d)
            per_layer[layer] = (
                key.expand(batch, heads, P, d),  # (B, heads, P, d), stride 0 over the batch
                value.expand(batch, heads, P, d),
                prefix_attention_mask,
            )
        return per_layer


class PromptEncoder(nn.Module):
    """Shallow prompt tuning (Lester et al.): P trainable vectors in word-embedding space, (P, H)."""

    def __init__(self, pre_seq_len: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(pre_seq_len, hidden_size)
        self.register_buffer("prompt_ids", torch.arange(pre_seq_len), persistent=False)

    def forward(self) -> torch.Tensor:
        return self.embedding(self.prompt_ids)  # (P, H)

    def zero_(self) -> None:
        """--prefix_init zeros: every prompt vector exactly 0."""
        with torch.no_grad():
            self.embedding.weight.zero_()


# -- --prefix_init tokens (model/methods.py Method.initialise): the words a prompt starts from -------------------


def sample_word_ids(config, count: int, tokenizer_path: str | None = None) -> torch.Tensor:
    """`count` distinct vocabulary ids drawn with the global RNG (seeded by --seed). With a local tokenizer: whole
    alphabetic words of 2+ letters (no sub-word pieces, special or unused tokens); else any id but the config's
    special ones."""
    candidates = None
    if tokenizer_path and os.path.isdir(tokenizer_path):
        from model.loading import vocabulary

        pieces, special = vocabulary(tokenizer_path)
        candidates = [
            i
            for i, piece in enumerate(pieces)
            if i not in special
            and i < config.vocab_size
            and len(w := piece.lstrip("Ġ▁")) >= 2
            and w.isalpha()
        ]
    if not candidates:
        special = {getattr(config, f"{n}_token_id", None) for n in ("pad", "bos", "eos", "sep", "cls", "unk")}
        candidates = [i for i in range(config.vocab_size) if i not in special]
    if len(candidates) < count:
        raise ValueError(
            f"--prefix_init tokens needs {count} distinct words, the vocabulary offers {len(candidates)}"
        )
    order = torch.randperm(len(candidates))[:count]
    return torch.tensor([candidates[i] for i in order.tolist()])
