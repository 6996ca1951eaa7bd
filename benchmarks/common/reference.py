"""The hand-written reference encoder: a prefixed backbone's hidden states and logits in plain PyTorch, on the
model's own weights, for every row of model/backbones.py.

Used by tests/test_backbones.py (every backbone, float32, prefixes re-randomised to N(0, 1)) and by the GPU check's
correctness section (benchmarks/gpu/correctness.py: BERT / RoBERTa logits and DeBERTa-v2's layer-0 attention, on a
float64 copy). Sizes (P, layers, heads, head size) are read from the model. reference_batch is the small padded
batch both check on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from model.utils import TaskType

ROBERTA_FAMILY = ("roberta", "xlm-roberta", "camembert")
ACT = {"gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh")}


def reference_batch(
    vocab: int, batch: int = 3, seq_len: int = 10, padded: bool = True, seed: int = 0, device="cpu"
):
    """(input_ids, attention_mask), each (B, T): random ids >= 3; with `padded`, row 1 is padding (id 1, the pad id
    of every tiny config) from 60 % of T on."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, seq_len), generator=g)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    if padded:
        cut, row = max(1, int(0.6 * seq_len)), min(1, batch - 1)
        mask[row, cut:] = 0
        ids[row, cut:] = 1
    return ids.to(device), mask.to(device)


def heads_of(t: torch.Tensor, heads: int) -> torch.Tensor:
    B, T, H = t.shape
    return t.view(B, T, heads, H // heads).transpose(1, 2)  # (B, T, H) -> (B, heads, T, d)


def reference_prefixes(model, layers) -> list:
    """Per depth: (key, value), each (heads, P, d), cut from the prefix table by hand; None for an unprefixed depth.
    `layers`: the prefixed depths, in table order (None: every layer).

    The table row of virtual token p is [layer 0: keys (heads·d) | values (heads·d)][layer 1: ...] ..., as the
    original's past_key_values view (P, 2·L, heads, d) split into (key, value) pairs per layer. With
    --prefix_projection the table is the MLP of the embedding, by hand: tanh(E·W0ᵀ + b0)·W2ᵀ + b2."""
    cfg, P = model.config, model.pre_seq_len
    H, heads = cfg.hidden_size, cfg.num_attention_heads
    encoder = model.prefix_encoder
    table = encoder.embedding.weight  # (P, 2·L'·H), or (P, H) with projection
    if encoder.projection:
        first, second = encoder.trans[0], encoder.trans[2]
        table = torch.tanh(table @ first.weight.T + first.bias) @ second.weight.T + second.bias  # (P, 2·L'·H)
    out = [None] * cfg.num_hidden_layers
    for j, depth in enumerate(range(cfg.num_hidden_layers) if layers is None else layers):
        # (heads, P, d) each
        key = table[:, (2 * j) * H : (2 * j + 1) * H].view(P, heads, H // heads).transpose(0, 1)
        value = table[:, (2 * j + 1) * H : (2 * j + 2) * H].view(P, heads, H // heads).transpose(0, 1)
        out[depth] = (key, value)
    return out


def attend(q, k, v, prefix, allowed, scale, rel_bias=None) -> torch.Tensor:
    """softmax(q·[pk; k]ᵀ/scale + [0; bias]) · [pv; v] with the prefix columns always open. q/k/v (B, heads, T, d);
    prefix (pk, pv), each (heads or B·heads view, P, d), or None; allowed (B, 1, T|1, T) bool over the real keys;
    rel_bias (B, heads, T, T) or None. Returns (B, T, H)."""
    B, heads, T, d = q.shape
    if prefix is not None:
        pk, pv = (t.expand(B, heads, -1, d) for t in prefix)  # (B, heads, P, d)
        P = pk.shape[2]
        k, v = torch.cat([pk, k], 2), torch.cat([pv, v], 2)  # (B, heads, P + T, d)
        open_prefix = torch.ones(B, 1, allowed.shape[2], P, dtype=torch.bool, device=allowed.device)
        allowed = torch.cat([open_prefix, allowed], -1)
        if rel_bias is not None:
            rel_bias = torch.cat([rel_bias.new_zeros(B, heads, T, P), rel_bias], -1)  # prefix keys: zero bias
    scores = q @ k.transpose(-1, -2) / scale  # (B, heads, T, P + T)
    if rel_bias is not None:
        scores = scores + rel_bias
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, heads * d)


def reference_embeddings(model, ids, mask, shift: bool) -> torch.Tensor:
    """The embedding output (B, T, H): positions shifted by P when `shift` (absolute and RoBERTa-style ones)."""
    bb, cfg, kind = model.backbone, model.config, model.config.model_type
    emb, pad = bb.embeddings, cfg.pad_token_id
    B, T = ids.shape
    words = emb.word_embeddings(ids)
    if kind.startswith("deberta"):  # relative positions only: nothing to shift
        assert (
            emb.position_embeddings is None and emb.token_type_embeddings is None and emb.embed_proj is None
        )
        return emb.LayerNorm(words) * mask[..., None]
    offset = model.pre_seq_len if shift else 0
    if kind in ROBERTA_FAMILY:  # padding_idx+1 .. ; pads keep padding_idx
        keep = ids.ne(pad).long()
        pos = (torch.cumsum(keep, 1) + offset) * keep + pad
    else:
        pos = torch.arange(T, device=ids.device).expand(B, T) + offset
    x = words + emb.position_embeddings(pos) + emb.token_type_embeddings(torch.zeros_like(ids))
    x = emb.LayerNorm(x)
    if kind == "electra":
        x = bb.embeddings_project(x)  # (B, T, E) -> (B, T, H)
    if kind == "albert":
        x = bb.encoder.embedding_hidden_mapping_in(x)
    return x


def reference_hidden(model, ids, mask, shift: bool, layers) -> torch.Tensor:
    """Last hidden states (B, T, H) of the backbone with the prefix of `layers` (None: all) in their attention."""
    bb, cfg, kind = model.backbone, model.config, model.config.model_type
    heads, d = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    act = ACT[cfg.hidden_act]
    prefixes = reference_prefixes(model, layers)
    x = reference_embeddings(model, ids, mask, shift)
    keep = mask.bool()
    for depth in range(cfg.num_hidden_layers):
        prefix = prefixes[depth]
        if kind == "albert":  # the one shared layer at every depth, each depth with its own prefix
            layer = bb.encoder.albert_layer_groups[0].albert_layers[0]
            att = layer.attention
            q, k, v = (heads_of(f(x), heads) for f in (att.query, att.key, att.value))
            ctx = attend(q, k, v, prefix, keep[:, None, None, :], math.sqrt(d))
            a = att.LayerNorm(att.dense(ctx) + x)
            x = layer.full_layer_layer_norm(layer.ffn_output(act(layer.ffn(a))) + a)
            continue
        layer = bb.encoder.layer[depth]
        att = layer.attention.self
        if kind.startswith("deberta"):
            # token-token relative bias from the stock module (prefix-free); the prefix columns get zero bias
            rel_emb, rel_pos = bb.encoder.get_rel_embedding(), bb.encoder.get_rel_pos(x)
            pairwise = (keep[:, None, :, None] & keep[:, None, None, :]).expand(-1, 1, -1, -1)  # (B, 1, T, T)
            if kind == "deberta":  # fused projection, separate q/v biases; q pre-scaled
                q, k, v = att.in_proj(x).view(*x.shape[:2], heads, 3 * d).transpose(1, 2).chunk(3, dim=-1)
                q = (q + att.q_bias.view(heads, 1, d)) / math.sqrt(3 * d)
                v = v + att.v_bias.view(heads, 1, d)
                rel = att.disentangled_att_bias(q, k, rel_pos, rel_emb, 3)  # (B, heads, T, T)
                ctx = attend(q, k, v, prefix, pairwise, 1.0, rel)
            else:
                q, k, v = (heads_of(f(x), heads) for f in (att.query_proj, att.key_proj, att.value_proj))
                flat = (t.reshape(-1, *t.shape[2:]) for t in (q, k))  # (B·heads, T, d)
                rel = att.disentangled_attention_bias(*flat, rel_pos, rel_emb, 3).view(
                    q.shape[0], heads, *q.shape[2:3] * 2
                )
                ctx = attend(q, k, v, prefix, pairwise, math.sqrt(3 * d), rel)
        else:
            q, k, v = (heads_of(f(x), heads) for f in (att.query, att.key, att.value))
            ctx = attend(q, k, v, prefix, keep[:, None, None, :], math.sqrt(d))
        out = layer.attention.output
        a = out.LayerNorm(out.dense(ctx) + x)
        x = layer.output.LayerNorm(layer.output.dense(act(layer.intermediate.dense(a))) + a)
    return x


def reference_logits(model, ids, mask, shift=True, task=TaskType.SEQUENCE_CLASSIFICATION, layers=None):
    """Logits of the model's head on reference_hidden: (B, labels) for sequence classification (through the
    backbone's pooler or the new ContextPooler, as the row says), (B, T, labels) for token classification.
    `layers`: the prefixed depths (None: every layer)."""
    x = reference_hidden(model, ids, mask, shift, layers)
    W, b = model.classifier.weight, model.classifier.bias
    if task == TaskType.TOKEN_CLASSIFICATION:
        return x @ W.T + b  # (B, T, labels)
    first, kind, bb = x[:, 0], model.config.model_type, model.backbone
    if kind == "albert":  # pretrained pooler: a bare Linear, then tanh
        pooled = torch.tanh(first @ bb.pooler.weight.T + bb.pooler.bias)
    elif kind == "electra" or kind.startswith("deberta"):  # new ContextPooler: dense + gelu
        dense = model.pooler.context.dense
        pooled = F.gelu(first @ dense.weight.T + dense.bias)
    else:  # BERT/RoBERTa family: pretrained pooler dense + tanh
        pooled = torch.tanh(first @ bb.pooler.dense.weight.T + bb.pooler.dense.bias)
    return pooled @ W.T + b  # (B, labels)
