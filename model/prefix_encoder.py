"""The trainable prompt parameters. Follows the original model/prefix_encoder.py."""

from __future__ import annotations

import torch
from torch import nn


class PrefixEncoder(nn.Module):
    """P-tuning v2 prefix: P virtual tokens -> one key and one value vector per prefixed layer.

    Without projection: Embedding(P, 2·L·H), i.e. every layer's key/value prefix is a free parameter.
    With projection (prefix-tuning's reparameterisation): Embedding(P, H) -> Linear(H, h) -> Tanh -> Linear(h, 2·L·H).
    L is the number of prefixed layers, H = heads × head_dim of the backbone's attention.
    """

    def __init__(
        self,
        pre_seq_len: int,
        num_layers: int,
        kv_dim: int,
        hidden_size: int,
        projection: bool,
        projection_hidden_size: int,
    ):
        super().__init__()
        self.pre_seq_len, self.num_layers, self.kv_dim = pre_seq_len, num_layers, kv_dim
        out_dim = 2 * num_layers * kv_dim
        self.projection = projection
        if projection:
            self.embedding = nn.Embedding(pre_seq_len, hidden_size)
            self.trans = nn.Sequential(
                nn.Linear(hidden_size, projection_hidden_size),
                nn.Tanh(),
                nn.Linear(projection_hidden_size, out_dim),
            )
        else:
            self.embedding = nn.Embedding(pre_seq_len, out_dim)
        self.register_buffer("prefix_ids", torch.arange(pre_seq_len), persistent=False)

    def forward(self) -> torch.Tensor:
        """The prefix of every layer, computed once per forward: (P, 2·L·H). It is shared by the whole batch."""
        prefix = self.embedding(self.prefix_ids)  # (P, H) or (P, 2·L·H)
        return self.trans(prefix) if self.projection else prefix


class PromptEncoder(nn.Module):
    """Shallow prompt tuning (Lester et al.): P trainable vectors in word-embedding space, (P, H)."""

    def __init__(self, pre_seq_len: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(pre_seq_len, hidden_size)
        self.register_buffer("prompt_ids", torch.arange(pre_seq_len), persistent=False)

    def forward(self) -> torch.Tensor:
        return self.embedding(self.prompt_ids)  # (P, H)
