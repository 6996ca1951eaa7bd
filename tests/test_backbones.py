"""Every row of model/backbones.py, pinned against a hand-written reference encoder (plain PyTorch on the weights).

The prefix and the head are re-randomised to N(0, 1), with a different prefix in every layer, so that the prefix
moves the logits by O(1): routing layer 0's prefix everywhere, swapping keys and values, or dropping a depth's prefix
changes them far beyond the tolerance. (A freshly initialised prefix, N(0, 0.02), moves them by ~1e-5.)
The reference is benchmarks/common/reference.py (the GPU check runs it too); tiny random backbones from
benchmarks/common/tiny.py (via tests/tiny.py); nothing is downloaded.
"""

import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from arguments import ModelArguments
from benchmarks.common.reference import ROBERTA_FAMILY, reference_batch, reference_logits
from model.backbones import BACKBONES, get_backbone
from model.ptuning import PTuningError
from model.utils import TaskType, build_model
from tiny import TINY_KINDS, TINY_SIZES, tiny_config

P = 5
NL = TINY_SIZES["num_hidden_layers"]
SEQ, TOK = TaskType.SEQUENCE_CLASSIFICATION, TaskType.TOKEN_CLASSIFICATION


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


def batch():
    return reference_batch(TINY_SIZES["vocab_size"])  # 3 rows of 10, row 1 padded from token 6


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
