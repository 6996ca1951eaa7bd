"""Every row of model/backbones.py, pinned against a hand-written reference encoder (plain PyTorch on the weights).

The prefix and the head are re-randomised to N(0, 1), with a different prefix in every layer, so that the prefix
moves the logits by O(1): routing layer 0's prefix everywhere, swapping keys and values, or dropping a depth's prefix
changes them far beyond the tolerance. (A freshly initialised prefix, N(0, 0.02), moves them by ~1e-5.)
Tiny random backbones from tests/tiny.py; nothing is downloaded.
"""

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from arguments import ModelArguments
from model.backbones import BACKBONES, get_backbone
from model.ptuning import PTuningError
from model.utils import TaskType, build_model
from tiny import TINY_KINDS, TINY_SIZES, tiny_config

P = 5
H, NL, HEADS = TINY_SIZES["hidden_size"], TINY_SIZES["num_hidden_layers"], TINY_SIZES["num_attention_heads"]
D = H // HEADS
SEQ, TOK = TaskType.SEQUENCE_CLASSIFICATION, TaskType.TOKEN_CLASSIFICATION
ROBERTA_FAMILY = ("roberta", "xlm-roberta", "camembert")
ACT = {"gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh")}


def make_model(kind, task=SEQ, attn="sdpa", head_seed=1, **flags):
    """The same backbone weights for every call (seed 0); the new prompt/head from `head_seed`."""
    torch.manual_seed(0)
    config = tiny_config(kind)
    attn_backbone = attn if get_backbone(config).attention == "interface" else "eager"
    backbone = AutoModel.from_config(config, attn_implementation=attn_backbone).eval()
    args = ModelArguments(
        model_name_or_path="tiny", pre_seq_len=P, attn_implementation=attn, hidden_dropout_prob=0.0, **flags
    )
    torch.manual_seed(head_seed)
    return build_model(backbone, args, task).eval()


def randomise(model, seed):
    """Every trainable tensor (prefix table, pooler of DeBERTa/ELECTRA, classifier) -> N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g))
    return model


def batch(B=3, T=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, TINY_SIZES["vocab_size"], (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 6:] = 0  # a padded row
    ids[1, 6:] = TINY_SIZES["pad_token_id"]
    return ids, mask


# -- the hand-written reference ---------------------------------------------------------------------------------------
def reference_prefixes(model, layers):
    """Per depth: (key, value), each (heads, P, d), cut from the prefix table by hand; None for an unprefixed depth.

    The table row of virtual token p is [layer 0: keys (heads·d) | values (heads·d)][layer 1: ...] ..., as the
    original's past_key_values view (P, 2·L, heads, d) split into (key, value) pairs per layer. With
    --prefix_projection the table is the MLP of the embedding, by hand: tanh(E·W0ᵀ + b0)·W2ᵀ + b2."""
    encoder = model.prefix_encoder
    table = encoder.embedding.weight  # (P, 2·L'·H), or (P, H) with projection
    if encoder.projection:
        first, second = encoder.trans[0], encoder.trans[2]
        table = torch.tanh(table @ first.weight.T + first.bias) @ second.weight.T + second.bias  # (P, 2·L'·H)
    out = [None] * NL
    for j, depth in enumerate(layers):
        key = table[:, (2 * j) * H : (2 * j + 1) * H].view(P, HEADS, D).transpose(0, 1)  # (heads, P, d)
        value = table[:, (2 * j + 1) * H : (2 * j + 2) * H].view(P, HEADS, D).transpose(0, 1)
        out[depth] = (key, value)
    return out


def heads_of(t):
    return t.view(t.shape[0], t.shape[1], HEADS, D).transpose(1, 2)  # (B, T, H) -> (B, heads, T, d)


def attend(q, k, v, prefix, allowed, scale, rel_bias=None):
    """softmax(q·[pk; k]ᵀ/scale + [0; bias]) · [pv; v] with prefix columns always open. q/k/v (B, heads, T, d),
    allowed (B, 1, T|1, T) bool over the real keys. Returns (B, T, H)."""
    B, _, T, _ = q.shape
    if prefix is not None:
        pk, pv = (t.expand(B, HEADS, P, D) for t in prefix)
        k, v = torch.cat([pk, k], 2), torch.cat([pv, v], 2)  # (B, heads, P + T, d)
        allowed = torch.cat([torch.ones(B, 1, allowed.shape[2], P, dtype=torch.bool), allowed], -1)
        if rel_bias is not None:
            rel_bias = torch.cat([torch.zeros(B, HEADS, T, P), rel_bias], -1)  # prefix keys: zero bias
    scores = q @ k.transpose(-1, -2) / scale  # (B, heads, T, P + T)
    if rel_bias is not None:
        scores = scores + rel_bias
    scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)


def reference_embeddings(model, ids, mask, shift):
    bb, cfg, kind = model.backbone, model.config, model.config.model_type
    emb, pad = bb.embeddings, cfg.pad_token_id
    B, T = ids.shape
    words = emb.word_embeddings(ids)
    if kind.startswith("deberta"):  # relative positions only: nothing to shift
        assert (
            emb.position_embeddings is None and emb.token_type_embeddings is None and emb.embed_proj is None
        )
        return emb.LayerNorm(words) * mask[..., None]
    offset = P if shift else 0
    if kind in ROBERTA_FAMILY:  # padding_idx+1 .. ; pads keep padding_idx
        keep = ids.ne(pad).long()
        pos = (torch.cumsum(keep, 1) + offset) * keep + pad
    else:
        pos = torch.arange(T).expand(B, T) + offset
    x = words + emb.position_embeddings(pos) + emb.token_type_embeddings(torch.zeros_like(ids))
    x = emb.LayerNorm(x)
    if kind == "electra":
        x = bb.embeddings_project(x)  # (B, T, E) -> (B, T, H)
    if kind == "albert":
        x = bb.encoder.embedding_hidden_mapping_in(x)
    return x


def reference_hidden(model, ids, mask, shift, layers):
    """Last hidden states (B, T, H) of the backbone with the prefix of `layers` in their attention."""
    bb, cfg, kind = model.backbone, model.config, model.config.model_type
    act = ACT[cfg.hidden_act]
    prefixes = reference_prefixes(model, layers)
    x = reference_embeddings(model, ids, mask, shift)
    keep = mask.bool()
    for depth in range(NL):
        prefix = prefixes[depth]
        if kind == "albert":  # the one shared layer at every depth, each depth with its own prefix
            layer = bb.encoder.albert_layer_groups[0].albert_layers[0]
            att = layer.attention
            q, k, v = heads_of(att.query(x)), heads_of(att.key(x)), heads_of(att.value(x))
            ctx = attend(q, k, v, prefix, keep[:, None, None, :], math.sqrt(D))
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
                q, k, v = att.in_proj(x).view(*x.shape[:2], HEADS, 3 * D).transpose(1, 2).chunk(3, dim=-1)
                q = (q + att.q_bias.view(HEADS, 1, D)) / math.sqrt(3 * D)
                v = v + att.v_bias.view(HEADS, 1, D)
                rel = att.disentangled_att_bias(q, k, rel_pos, rel_emb, 3)  # (B, heads, T, T)
                ctx = attend(q, k, v, prefix, pairwise, 1.0, rel)
            else:
                q, k, v = heads_of(att.query_proj(x)), heads_of(att.key_proj(x)), heads_of(att.value_proj(x))
                flat = (t.reshape(-1, *t.shape[2:]) for t in (q, k))  # (B·heads, T, d)
                rel = att.disentangled_attention_bias(*flat, rel_pos, rel_emb, 3).view(
                    q.shape[0], HEADS, *q.shape[2:3] * 2
                )
                ctx = attend(q, k, v, prefix, pairwise, math.sqrt(3 * D), rel)
        else:
            q, k, v = heads_of(att.query(x)), heads_of(att.key(x)), heads_of(att.value(x))
            ctx = attend(q, k, v, prefix, keep[:, None, None, :], math.sqrt(D))
        out = layer.attention.output
        a = out.LayerNorm(out.dense(ctx) + x)
        x = layer.output.LayerNorm(layer.output.dense(act(layer.intermediate.dense(a))) + a)
    return x


def reference_logits(model, ids, mask, shift=True, task=SEQ, layers=tuple(range(NL))):
    x = reference_hidden(model, ids, mask, shift, layers)
    W, b = model.classifier.weight, model.classifier.bias
    if task == TOK:
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


# -- coverage ---------------------------------------------------------------------------------------------------------
def test_every_backbone_row_is_tested():
    """Adding a row to model/backbones.py without a tiny config here fails: every test below runs on TINY_KINDS."""
    assert set(TINY_KINDS) == set(BACKBONES)


def test_the_readme_lists_exactly_the_tested_backbones():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `--model_name_or_path`"))
    listed = re.search(r"Hub id \(([^)]*)\)", row).group(1)
    assert {name.split("/")[0] for name in listed.split(", ")} == set(TINY_KINDS)


def test_reference_pins_the_quirks_table():
    """The reference's own position/pooler choices agree with the table rows it is meant to check."""
    for kind in TINY_KINDS:
        row = get_backbone(tiny_config(kind))
        assert row.position_style == (
            "padding_offset"
            if kind in ROBERTA_FAMILY
            else "relative"
            if kind.startswith("deberta")
            else "absolute"
        )
        assert row.pooler == ("context" if kind == "electra" or kind.startswith("deberta") else "backbone")
        assert row.shared_layers == (kind == "albert")


# -- equality with the reference --------------------------------------------------------------------------------------
CASES = [
    (kind, attn)
    for kind in TINY_KINDS
    for attn in (["eager"] if BACKBONES[kind].attention != "interface" else ["eager", "sdpa"])
]


CASES_SDPA = {kind for kind, attn in CASES if attn == "sdpa"}


@pytest.mark.parametrize("kind,attn", CASES)
@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("task", [SEQ, TOK])
def test_logits_equal_the_hand_written_reference(kind, attn, shift, task):
    model = randomise(make_model(kind, task, attn=attn, prefix=True, shift_positions=shift), seed=0)
    ids, mask = batch()
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
        want = reference_logits(model, ids, mask, shift, task)
        without_prefix = reference_logits(model, ids, mask, shift, task, layers=())
    assert (
        model.injector.consumed == NL
    )  # every depth took its own prefix (ALBERT: one shared layer, NL calls)
    assert (want - without_prefix).abs().max() > 1.0  # the prefix moves the logits by O(1)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize(
    "kind", ["bert", "albert", "deberta-v2"]
)  # one per route: layer_idx, shared, adapter
def test_prefix_layers_give_prefix_columns_to_the_chosen_layers_only(kind):
    model = randomise(make_model(kind, prefix=True, prefix_layers="0,2"), seed=0)
    ids, mask = batch()
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
        want = reference_logits(model, ids, mask, layers=(0, 2))
        in_order = reference_logits(model, ids, mask, layers=(0, 1))  # table entries 0, 1 at depths 0, 1
    assert model.injector.consumed == 2
    assert (want - in_order).abs().max() > 1.0
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


# one per route: layer_idx, shared, adapter
@pytest.mark.parametrize("kind", ["bert", "albert", "deberta-v2"])
@pytest.mark.parametrize("task", [SEQ, TOK])
def test_projection_logits_equal_the_hand_written_reference(kind, task):
    """--prefix_projection: the reference computes the table from the MLP by hand (tanh), then attends as above."""
    model = randomise(
        make_model(kind, task, prefix=True, prefix_projection=True, prefix_hidden_size=16), seed=0
    )
    ids, mask = batch()
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
        want = reference_logits(model, ids, mask, task=task)
        without_prefix = reference_logits(model, ids, mask, task=task, layers=())
    assert model.injector.consumed == NL
    assert (want - without_prefix).abs().max() > 1.0
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("kind,attn", CASES)
def test_a_closed_prefix_reproduces_the_bare_backbone(kind, attn):
    model = randomise(make_model(kind, TOK, attn=attn, prefix=True, shift_positions=False), seed=0)
    torch.manual_seed(0)
    bare = AutoModel.from_config(
        tiny_config(kind), attn_implementation=attn if kind in CASES_SDPA else "eager"
    )
    ids, mask = batch()
    closed = torch.zeros(ids.shape[0], P, dtype=torch.bool)
    with torch.no_grad():
        got = model.encode(ids, mask, prefix_attention_mask=closed)
        want = bare.eval()(input_ids=ids, attention_mask=mask)[0]
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want[keep], atol=1e-4, rtol=1e-5)


# -- checkpoints ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", TINY_KINDS)
@pytest.mark.parametrize("task", [SEQ, TOK])
def test_checkpoint_round_trip_restores_every_trainable_tensor(kind, task, tmp_path):
    from safetensors.torch import load_file, save_file

    trained = randomise(make_model(kind, task, prefix=True, head_seed=1), seed=0)
    save_file(trained.state_dict(), tmp_path / "model.safetensors")
    saved = load_file(tmp_path / "model.safetensors")
    trainable = {n for n, p in trained.named_parameters() if p.requires_grad}
    assert not any(k.startswith("backbone.") for k in saved)
    assert trainable <= saved.keys()  # the prefix, the head, and DeBERTa's/ELECTRA's new pooler

    fresh = randomise(make_model(kind, task, prefix=True, head_seed=2), seed=1)  # a different prompt and head
    ids, mask = batch()
    with torch.no_grad():
        before = fresh(input_ids=ids, attention_mask=mask).logits
        want = trained(input_ids=ids, attention_mask=mask).logits
        assert (before - want).abs().max() > 1.0
        fresh.load_state_dict(saved)
        got = fresh(input_ids=ids, attention_mask=mask).logits
    for name in trainable:
        assert torch.equal(fresh.get_parameter(name), trained.get_parameter(name)), name
    torch.testing.assert_close(got, want, atol=0, rtol=0)


# -- a backbone that ignores the prefix fails loudly ------------------------------------------------------------------
def test_a_backbone_that_drops_the_prefix_keyword_fails_at_the_first_forward(monkeypatch):
    model = make_model("bert", prefix=True)
    stock = model.backbone.forward

    def drops_prefix(*args, prefix_kv=None, **kwargs):
        return stock(*args, **kwargs)

    monkeypatch.setattr(model.backbone, "forward", drops_prefix)
    with pytest.raises(PTuningError, match=r"bert backbone's attention took 0 of 3 layer prefixes"):
        model(*batch())


def test_a_deberta_attention_without_its_adapter_fails_at_the_first_forward():
    model = make_model("deberta-v2", prefix=True)
    attention = model.backbone.encoder.layer[1].attention.self
    attention.forward = type(attention).forward.__get__(
        attention
    )  # the stock forward: never takes its prefix
    with pytest.raises(PTuningError, match=r"deberta-v2 backbone's attention took 2 of 3 layer prefixes"):
        model(*batch())


def test_a_shared_layer_backbone_without_the_depth_loop_is_a_clear_error():
    model = make_model("albert", prefix=True)
    del model.backbone.encoder.forward  # back to the stock loop, which does not pass prefix_depth
    with pytest.raises(PTuningError, match="AlbertAttention has no layer_idx"):
        model(*batch())


def test_albert_with_several_layers_per_depth_is_refused():
    torch.manual_seed(0)
    config = tiny_config("albert")
    config.inner_group_num = 2
    with pytest.raises(PTuningError, match="inner_group_num=2"):
        build_model(
            AutoModel.from_config(config),
            ModelArguments(model_name_or_path="tiny", prefix=True, pre_seq_len=P),
            SEQ,
        )
