"""The one prefix injector: per-layer (key, value) prefixes into the attention of a frozen encoder.

Encoders whose attention goes through transformers' AttentionInterface (BERT, RoBERTa, ELECTRA, XLM-R, ALBERT ...)
get two registered implementations, "prefix_sdpa" and "prefix_eager": they prepend the layer's prefix keys/values
(passed down the forward as the `prefix_kv` kwarg) and P always-attend columns to the mask, then call the stock
kernel. The depth is the attention module's `layer_idx`; ALBERT runs ONE shared layer at every depth, so its encoder
loop is replaced by one that passes the depth down as the `prefix_depth` kwarg (captured by gradient checkpointing
like any other argument, so a recomputation sees the same depth). DeBERTa (v1 and v2/v3) computes attention itself,
so its attention modules get a small adapter that does the same and gives prefix keys zero relative-position bias,
as the original's patched copies of modeling_deberta.

Every route takes its layer's prefix through `LayerPrefixes.take`, which counts: the prefix method
(model/prefix_tuning.py) compares the count with the number of prefixed layers after each forward, training and
serving alike, so a backbone whose attention ignores the prefix fails loudly.

Why not the cache (`past_key_values`) route the original used: on transformers 5.x that argument is renamed and
deprecated, the cache object is mutated in place by every layer, gradient checkpointing drops it silently, and
DeBERTa's attention has no cache at all.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

from model.config import PTuningError

# A layer's prefix: (key, value), each (B, heads, P, head_dim), plus an optional (B, P) bool mask of the prefix
# slots a query may attend to (None: all). One entry per backbone layer; None for a layer without prefix.
LayerPrefix = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


class LayerPrefixes(list):
    """One forward's prefixes: a LayerPrefix (or None) per depth, and how many of them attention consumed."""

    def __init__(self, per_layer):
        super().__init__(per_layer)
        self.consumed = 0

    def take(self, depth: int) -> LayerPrefix | None:
        layer_prefix = self[depth]
        if layer_prefix is not None:
            self.consumed += 1
        return layer_prefix


def _prefix_mask_columns(attention_mask, prefix_mask, batch: int, q_len: int, P: int, additive: bool, like):
    """Columns for the P prefix keys, shaped to be concatenated in front of a 4-D mask (B, 1, q|1, T)."""
    rows = attention_mask.shape[-2] if attention_mask is not None else 1
    allowed = (
        torch.ones(batch, 1, rows, P, dtype=torch.bool, device=like.device)
        if prefix_mask is None
        else prefix_mask.bool()[:, None, None, :].expand(batch, 1, rows, P)
    )
    if not additive:
        return allowed
    dtype = attention_mask.dtype if attention_mask is not None else like.dtype
    return torch.zeros(allowed.shape, dtype=dtype, device=like.device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )


def extend_mask(
    attention_mask, prefix_mask, batch: int, q_len: int, k_len: int, P: int, additive: bool, like
):
    """The 4-D mask over [prefix; tokens]: (B, 1, q|1, P + T). None stays None while every prefix slot is open."""
    if attention_mask is None and prefix_mask is None:
        return None
    cols = _prefix_mask_columns(attention_mask, prefix_mask, batch, q_len, P, additive, like)
    if attention_mask is None:  # no padding: every token column is open
        fill = 0.0 if additive else True
        attention_mask = torch.full((batch, 1, 1, k_len), fill, dtype=cols.dtype, device=cols.device)
    return torch.cat([cols.expand(*attention_mask.shape[:-1], P), attention_mask], dim=-1)


def eager_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Plain softmax attention on (B, heads, q, d) tensors with an additive mask; as BERT's stock eager path."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, heads, q, k)
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = F.dropout(scores.softmax(dim=-1), p=dropout, training=module.training)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs  # (B, q, heads, d)


def _with_prefix(kernel, additive: bool):
    def attention(module, query, key, value, attention_mask, prefix_kv=None, prefix_depth=None, **kwargs):
        depth = getattr(module, "layer_idx", None) if prefix_depth is None else prefix_depth
        if prefix_kv is not None and depth is None:
            raise PTuningError(
                f"{type(module).__name__} has no layer_idx and no prefix_depth was passed, so it cannot know its "
                "depth's prefix: give its row in model/backbones.py shared_layers=True (as ALBERT) or an adapter."
            )
        layer_prefix = None if prefix_kv is None else prefix_kv.take(depth)
        if layer_prefix is not None:
            prefix_key, prefix_value, prefix_mask = layer_prefix  # (B, heads, P, d) each
            batch, _, q_len, _ = query.shape
            P, k_len = prefix_key.shape[2], key.shape[2]
            key = torch.cat([prefix_key.to(key.dtype), key], dim=2)  # (B, heads, P + T, d)
            value = torch.cat([prefix_value.to(value.dtype), value], dim=2)
            attention_mask = extend_mask(attention_mask, prefix_mask, batch, q_len, k_len, P, additive, query)
        return kernel(module, query, key, value, attention_mask, **kwargs)

    return attention


AttentionInterface.register("prefix_sdpa", _with_prefix(sdpa_attention_forward, additive=False))
AttentionInterface.register("prefix_eager", _with_prefix(eager_attention, additive=True))
AttentionMaskInterface.register("prefix_sdpa", sdpa_mask)
AttentionMaskInterface.register("prefix_eager", eager_mask)


# ----------------------------------------------------------------------------------------------------------------
# ALBERT: one AlbertLayerGroup (shared weights) runs at every depth, so no module knows its depth. This replaces the
# encoder's loop (per instance; transformers 5.24 AlbertTransformer.forward) with one that passes the depth down.


def _albert_transformer_forward(self, hidden_states, attention_mask=None, **kwargs):
    from transformers.modeling_outputs import BaseModelOutput

    hidden_states = self.embedding_hidden_mapping_in(hidden_states)  # (B, T, E) -> (B, T, H)
    layers, groups = self.config.num_hidden_layers, self.config.num_hidden_groups
    for depth in range(layers):
        group = self.albert_layer_groups[int(depth / (layers / groups))]
        hidden_states = group(hidden_states, attention_mask, prefix_depth=depth, **kwargs)
    return BaseModelOutput(last_hidden_state=hidden_states)


# ----------------------------------------------------------------------------------------------------------------
# DeBERTa adapters. Each replaces one attention module's forward (per instance); with no active prefix it calls the
# stock forward unchanged. The current forward's LayerPrefixes are put on the module as `_ptuning_prefixes`, its
# depth as `_ptuning_depth`.


def _deberta_v2_forward(
    self,
    hidden_states,
    attention_mask,
    output_attentions=False,
    query_states=None,
    relative_pos=None,
    rel_embeddings=None,
):
    from transformers.models.deberta_v2.modeling_deberta_v2 import scaled_size_sqrt

    layer_prefix = (
        None if self._ptuning_prefixes is None else self._ptuning_prefixes.take(self._ptuning_depth)
    )
    if layer_prefix is None:
        return type(self).forward(
            self, hidden_states, attention_mask, output_attentions, query_states, relative_pos, rel_embeddings
        )
    prefix_key, prefix_value, prefix_mask = layer_prefix  # (B, heads, P, d) each
    heads = self.num_attention_heads
    batch, T = hidden_states.shape[:2]
    P = prefix_key.shape[2]
    queries = hidden_states if query_states is None else query_states
    query = self.transpose_for_scores(self.query_proj(queries), heads)  # (B·heads, T, d)
    key = self.transpose_for_scores(self.key_proj(hidden_states), heads)  # (B·heads, T, d)
    value = self.transpose_for_scores(self.value_proj(hidden_states), heads)
    prefix_key = prefix_key.reshape(batch * heads, P, -1).to(key.dtype)  # (B·heads, P, d)
    prefix_value = prefix_value.reshape(batch * heads, P, -1).to(value.dtype)

    scale_factor = 1 + ("c2p" in self.pos_att_type) + ("p2c" in self.pos_att_type)
    scale = scaled_size_sqrt(query, scale_factor)
    all_keys = torch.cat([prefix_key, key], dim=1)  # (B·heads, P + T, d)
    scores = torch.bmm(query, all_keys.transpose(-1, -2) / scale.to(dtype=query.dtype))  # (B·heads, T, P + T)
    if self.relative_attention:
        # relative-position bias among the real tokens only; prefix columns get zero bias (as the original)
        rel_embeddings = self.pos_dropout(rel_embeddings)
        rel_att = self.disentangled_attention_bias(query, key, relative_pos, rel_embeddings, scale_factor)
        # rel_att: (B·heads, T, T)
        scores = scores + F.pad(rel_att, (P, 0))
    scores = scores.view(-1, heads, T, P + T)  # (B, heads, T, P + T)
    mask = extend_mask(attention_mask.bool(), prefix_mask, batch, T, T, P, False, scores)
    scores = scores.masked_fill(~mask, torch.finfo(query.dtype).min)
    probs = self.dropout(scores.softmax(dim=-1))
    context = torch.bmm(probs.view(-1, T, P + T), torch.cat([prefix_value, value], dim=1))  # (B·heads, T, d)
    context = context.view(-1, heads, T, context.size(-1))  # (B, heads, T, d)
    context = context.permute(0, 2, 1, 3).contiguous()  # (B, T, heads, d)
    context = context.view(batch, T, -1)  # (B, T, heads·d)
    return (context, probs if output_attentions else None)


def _deberta_forward(
    self,
    hidden_states,
    attention_mask,
    output_attentions=False,
    query_states=None,
    relative_pos=None,
    rel_embeddings=None,
):
    from transformers.models.deberta.modeling_deberta import scaled_size_sqrt

    layer_prefix = (
        None if self._ptuning_prefixes is None else self._ptuning_prefixes.take(self._ptuning_depth)
    )
    if layer_prefix is None:
        return type(self).forward(
            self, hidden_states, attention_mask, output_attentions, query_states, relative_pos, rel_embeddings
        )
    if query_states is not None:
        raise NotImplementedError("DeBERTa's query_states path (z_steps > 0) is not supported with a prefix.")
    prefix_key, prefix_value, prefix_mask = layer_prefix  # (B, heads, P, d) each
    batch, T = hidden_states.shape[:2]
    P = prefix_key.shape[2]
    qkv = self.transpose_for_scores(self.in_proj(hidden_states))  # (B, heads, T, 3·d): per head [q|k|v]
    query, key, value = qkv.chunk(3, dim=-1)  # (B, heads, T, d) each
    query = query + self.transpose_for_scores(self.q_bias[None, None, :])
    value = value + self.transpose_for_scores(self.v_bias[None, None, :])
    scale_factor = 1 + len(self.pos_att_type)
    query = query / scaled_size_sqrt(query, scale_factor).to(dtype=query.dtype)
    all_keys = torch.cat([prefix_key.to(key.dtype), key], dim=2)  # (B, heads, P + T, d)
    scores = torch.matmul(query, all_keys.transpose(-1, -2))  # (B, heads, T, P + T)
    if self.relative_attention and rel_embeddings is not None and relative_pos is not None:
        rel_embeddings = self.pos_dropout(rel_embeddings)
        rel_att = self.disentangled_att_bias(query, key, relative_pos, rel_embeddings, scale_factor)
        # rel_att: (B, heads, T, T); the prefix columns get zero bias
        scores = scores + F.pad(rel_att, (P, 0))
    if self.head_logits_proj is not None:
        scores = self.head_logits_proj(scores.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    mask = extend_mask(attention_mask.bool(), prefix_mask, batch, T, T, P, False, scores)
    probs = self.dropout(scores.masked_fill(~mask, torch.finfo(query.dtype).min).softmax(dim=-1))
    if self.head_weights_proj is not None:
        probs = self.head_weights_proj(probs.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    all_values = torch.cat([prefix_value.to(value.dtype), value], dim=2)  # (B, heads, P + T, d)
    context = torch.matmul(probs, all_values).permute(0, 2, 1, 3).contiguous()  # (B, T, heads, d)
    return (context.view(batch, T, -1), probs if output_attentions else None)  # (B, T, heads·d)


_ADAPTERS = {
    "deberta": ("DisentangledSelfAttention", _deberta_forward),
    "deberta-v2": ("DisentangledSelfAttention", _deberta_v2_forward),
}


class PrefixInjector:
    """Routes a forward's per-layer prefixes into the backbone's attention; one per backbone (`attach`).

    `set(prefix_kv)` installs the prefixes of the NEXT backbone forward and returns the extra forward kwargs to pass
    to it (interface route); adapter backbones (DeBERTa) get them set on their attention modules instead, in layer
    order. A forward pre-hook on the backbone hands them to that one forward and clears them for the next, so a
    forward without a `set` (a prompt adapter's, a plain one) never sees a prefix left by an earlier one; gradient
    checkpointing recomputes layers, not the backbone's forward, so a recomputation sees the same prefixes.
    `consumed` then says how many layer prefixes attention took in that forward.
    """

    @classmethod
    def attach(
        cls, backbone, attention: str, attn_implementation: str, shared_layers: bool = False
    ) -> PrefixInjector:
        """The backbone's injector: routed on the first call, the same object on every later one (every prefix
        model on a shared backbone gets it); a later `attn_implementation` switches the stock kernel it wraps."""
        injector = next((h for h in backbone._forward_pre_hooks.values() if isinstance(h, cls)), None)
        if injector is None:
            injector = cls(backbone, attention, attn_implementation, shared_layers)
            backbone.register_forward_pre_hook(injector)
        elif attention == "interface":  # as the latest prefix model asks
            backbone.set_attn_implementation(f"prefix_{attn_implementation}")
        return injector

    def __init__(self, backbone, attention: str, attn_implementation: str, shared_layers: bool = False):
        self.attention = attention
        self.adapted: list[torch.nn.Module] = []
        self.current: LayerPrefixes | None = None  # the running (or last) forward's prefixes
        self.pending: LayerPrefixes | None = None  # set() for the next forward
        if attention == "interface":
            backbone.set_attn_implementation(f"prefix_{attn_implementation}")
            if shared_layers:  # ALBERT
                backbone.encoder.forward = types.MethodType(_albert_transformer_forward, backbone.encoder)
            return
        class_name, forward = _ADAPTERS[attention]
        self.adapted = [m for m in backbone.modules() if type(m).__name__ == class_name]
        for depth, module in enumerate(self.adapted):
            module._ptuning_prefixes, module._ptuning_depth = None, depth
            module.forward = types.MethodType(forward, module)

    def set(self, prefix_kv: list[LayerPrefix | None] | None) -> dict:
        """Install the next forward's prefixes; returns the kwargs to pass to the backbone."""
        # a LayerPrefixes may build its layers lazily (model/prefix_tuning.py GatheredPrefixes)
        lazy = prefix_kv is None or isinstance(prefix_kv, LayerPrefixes)
        self.pending = prefix_kv if lazy else LayerPrefixes(prefix_kv)
        if self.adapted and self.pending is not None and len(self.pending) != len(self.adapted):
            raise ValueError(f"{len(prefix_kv)} layer prefixes for {len(self.adapted)} attention layers")
        if self.attention == "interface" and self.pending is not None:
            return {"prefix_kv": self.pending}
        return {}

    def __call__(self, backbone, args) -> None:
        """The backbone's forward pre-hook: this forward takes the pending prefixes (None: none)."""
        self.current, self.pending = self.pending, None
        for module in self.adapted:
            module._ptuning_prefixes = self.current

    @property
    def consumed(self) -> int:
        """Layer prefixes that attention took in the latest forward."""
        return 0 if self.current is None else self.current.consumed
