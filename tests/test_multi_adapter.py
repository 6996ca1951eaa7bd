"""model/multi_adapter.py: one backbone, six adapters (prefix and prompt; sequence classification, multiple choice,
token classification, QA; different P, a --prefix_layers subset, unshifted positions, a projection) in ONE mixed batch
give the logits of each adapter run alone, and identical predictions.

Every trainable tensor is N(0, 1), so a row that saw another adapter's prefix, a wrong position shift or a padded
prefix slot left open moves the logits far beyond the tolerance (the last test checks that it does)."""

import pytest
import torch
from transformers import AutoModel

from arguments import ModelArguments
from model.backbones import get_backbone
from model.config import MethodConfig, PTuningError
from model.multi_adapter import MultiAdapterModel, build_on
from model.utils import TaskType
from tiny import TINY_SIZES, tiny_config

SEQ, MC = TaskType.SEQUENCE_CLASSIFICATION, TaskType.MULTIPLE_CHOICE
TOK, QA = TaskType.TOKEN_CLASSIFICATION, TaskType.QUESTION_ANSWERING
# name: (head, labels, method flags)
ADAPTERS = {
    "nli": (SEQ, 3, {"prefix": True, "pre_seq_len": 3}),
    "copa": (MC, 1, {"prefix": True, "pre_seq_len": 5, "prefix_layers": "1"}),
    "ner": (TOK, 5, {"prefix": True, "pre_seq_len": 4, "shift_positions": False}),
    "ner_prompt": (TOK, 5, {"prompt": True, "pre_seq_len": 2}),
    "qa": (QA, 2, {"prefix": True, "pre_seq_len": 3, "prefix_projection": True, "prefix_hidden_size": 8}),
    "sst_prompt": (SEQ, 2, {"prompt": True, "pre_seq_len": 4}),
}
# the mixed batch: (adapter, rows); copa's one example is 2 choice rows
ORDER = ["ner", "nli", "copa", "qa", "ner_prompt", "nli", "sst_prompt", "ner", "ner_prompt"]
T = 10


def build(kind, attn="sdpa"):
    torch.manual_seed(0)
    config = tiny_config(kind)
    attn_backbone = attn if get_backbone(config).attention == "interface" else "eager"
    backbone = AutoModel.from_config(config, attn_implementation=attn_backbone).eval()
    bank = MultiAdapterModel(backbone)
    g = torch.Generator().manual_seed(1)
    for name, (task, labels, flags) in ADAPTERS.items():
        args = ModelArguments(
            model_name_or_path="tiny", attn_implementation=attn, hidden_dropout_prob=0.0, **flags
        )
        model = build_on(backbone, MethodConfig.from_args(args, config), task, labels)
        with torch.no_grad():
            for p in model.parameters():
                if p.requires_grad:
                    p.copy_(torch.randn(p.shape, generator=g))
        bank.add(name, model)
    return bank


def rows():
    """(input_ids, attention_mask, token_type_ids) of every row of ORDER, some padded, and the row -> adapter map."""
    g = torch.Generator().manual_seed(2)
    names = [n for n in ORDER for _ in range(2 if n == "copa" else 1)]
    ids = torch.randint(5, TINY_SIZES["vocab_size"], (len(names), T), generator=g)
    mask = torch.ones_like(ids)
    for r, cut in ((1, 6), (3, 8), (5, 4), (8, 7)):  # padded rows, one of them a choice row
        ids[r, cut:], mask[r, cut:] = TINY_SIZES["pad_token_id"], 0
    types = torch.zeros_like(ids)
    types[:, 5:] = mask[:, 5:]  # a second segment
    return ids, mask, types, names


def alone(model, ids, mask, types):
    """The adapter's own forward on its rows: logits per row as its `scores` shapes them."""
    if model.task_type == "MULTIPLE_CHOICE":  # one example of C choices: (1, C, T) -> (1, C) -> (C, 1)
        return model(input_ids=ids[None], attention_mask=mask[None], token_type_ids=types[None]).logits.view(
            -1, 1
        )
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    if model.task_type == "QUESTION_ANSWERING":
        return torch.stack([out.start_logits, out.end_logits], dim=-1)  # (R, T, 2)
    return out.logits


@pytest.mark.parametrize(
    "kind,attn", [("bert", "sdpa"), ("bert", "eager"), ("roberta", "sdpa"), ("deberta-v2", "eager")]
)
def test_a_mixed_batch_equals_each_adapter_alone(kind, attn):
    bank = build(kind, attn)
    ids, mask, types, names = rows()
    row_adapter = torch.tensor([bank.names.index(n) for n in names])
    with torch.no_grad():
        mixed = bank(ids, mask, types, row_adapter)
        for a, name in enumerate(bank.names):
            index = (row_adapter == a).nonzero().squeeze(1)
            expected = alone(bank.named(name), ids[index], mask[index], types[index])
            got = mixed[a]
            assert got.shape == expected.shape, name
            valid = mask[index].bool() if got.dim() == 3 else torch.ones(len(index), dtype=torch.bool)
            torch.testing.assert_close(got[valid], expected[valid], rtol=1e-5, atol=1e-5, msg=name)
            assert torch.equal(got[valid].argmax(-1), expected[valid].argmax(-1)), name


def test_the_equality_is_sensitive_to_whose_prefix_a_row_sees():
    """Control: the nli rows run with copa's prefix bank entry (same P slots, other values) differ by O(1)."""
    bank = build("bert")
    ids, mask, types, _ = rows()
    nli, copa = bank.names.index("nli"), bank.names.index("copa")
    with torch.no_grad():
        own = bank.encode(ids[:2], mask[:2], types[:2], torch.tensor([nli, nli]))
        other = bank.encode(ids[:2], mask[:2], types[:2], torch.tensor([copa, copa]))
    assert (own - other).abs().max() > 0.1


def test_an_adapter_on_another_backbone_or_a_fine_tuned_one_is_refused():
    bank = build("bert")
    other = AutoModel.from_config(tiny_config("bert"))
    args = ModelArguments(model_name_or_path="tiny", prefix=True, pre_seq_len=2)
    model = build_on(other, MethodConfig.from_args(args, other.config), SEQ, 2)
    with pytest.raises(PTuningError, match="another backbone object"):
        bank.add("x", model)
    finetuned = build_on(
        bank.backbone, MethodConfig.from_args(ModelArguments(model_name_or_path="t"), other.config), SEQ, 2
    )
    with pytest.raises(PTuningError, match="a fine-tuned model: it does not share a frozen backbone"):
        bank.add("y", finetuned)
    with pytest.raises(PTuningError, match="used twice"):
        bank.add("nli", bank.named("nli"))


def test_each_adapter_keeps_its_own_label_count():
    bank = build("bert")
    assert [bank.named(n).config.num_labels for n in bank.names] == [3, 1, 5, 5, 2, 2]
    assert bank.backbone.config.num_labels == TINY_SIZES["num_labels"]
    assert (
        bank.named("nli").classifier.out_features == 3
        and bank.named("sst_prompt").classifier.out_features == 2
    )


def test_names_with_dots_are_kept_and_served():
    """A search.sh run folder name holds dots ("drop0.1"): torch refuses such module names, so the adapter is stored
    under an internal key; the user's name is kept and the rows still get that adapter's logits."""
    bank = build("bert")
    name = "rte-1-1e-2-8-prefix-drop0.1-bs4-seed11"
    model = bank.adapter(bank.names.index("nli"))
    args = ModelArguments(model_name_or_path="tiny", prefix=True, pre_seq_len=3, hidden_dropout_prob=0.0)
    dotted = build_on(bank.backbone, MethodConfig.from_args(args, bank.config), SEQ, 3)
    dotted.load_state_dict(model.state_dict())
    index = bank.add(name, dotted)
    assert bank.names[index] == name and bank.adapter(index) is dotted
    ids, mask, types, _ = rows()
    with torch.no_grad():
        got = bank(ids[:2], mask[:2], types[:2], torch.tensor([index, index]))[index]
        expected = alone(model, ids[:2], mask[:2], types[:2])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
