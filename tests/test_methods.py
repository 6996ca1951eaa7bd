"""model/methods.py: each method is an object that owns its modules, what trains and saves, and its forward, served
or not; BitFit as a registered method; the prefix guard when serving; one injector per backbone, no prefix left over.

Tiny random backbones from configs; nothing is downloaded. Counts are written out by hand from the config sizes."""

import os
import re

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel, BertConfig

from arguments import ModelArguments
from model import methods
from model.checkpoint import META_KEY
from model.config import MethodConfig, PTuningError
from model.injection import PrefixInjector
from model.multi_adapter import MultiAdapterModel, build_on
from model.utils import TaskType, build_model, get_model
from tiny import tiny_config

SEQ, TOK = TaskType.SEQUENCE_CLASSIFICATION, TaskType.TOKEN_CLASSIFICATION
H, L, FFN, LABELS = 32, 2, 64, 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bert(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=120, hidden_size=H, num_hidden_layers=L, num_attention_heads=4, intermediate_size=FFN,
        max_position_embeddings=64, num_labels=LABELS, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    return AutoModel.from_config(config, attn_implementation="sdpa")  # with its pooler (BertModel's default)


def make(backbone, task=SEQ, **flags):
    args = ModelArguments(model_name_or_path="tiny", hidden_dropout_prob=0.0, **flags)
    torch.manual_seed(1)
    return build_model(backbone, args, task)


def batch(seed=0, B=3, T=10):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (B, T), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 6:], mask[1, 6:] = 1, 0
    return ids, mask


# -- BitFit -----------------------------------------------------------------------------------------------------------
def test_bitfit_is_chosen_by_its_flag_and_resolved_without_a_prompt():
    args = ModelArguments(model_name_or_path="tiny", bitfit=True, pre_seq_len=8)
    assert (args.method, args.trains_backbone) == ("bitfit", True)
    resolved = MethodConfig.from_args(args, tiny_config("bert"))
    assert (resolved.method, resolved.pre_seq_len, resolved.prefix_layers) == ("bitfit", 0, ())
    with pytest.raises(ValueError, match="--prefix and --bitfit are exclusive"):
        ModelArguments(model_name_or_path="tiny", prefix=True, bitfit=True)
    with pytest.raises(ValueError, match="--prefix_init only applies to --prefix or --prompt"):
        ModelArguments(model_name_or_path="tiny", bitfit=True, prefix_init="tokens")
    assert not ModelArguments(model_name_or_path="tiny", prefix=True).trains_backbone


def test_bitfit_trains_exactly_the_backbone_biases_and_the_head():
    model = make(bert(), bitfit=True)
    # by hand, BERT H=32, L=2, intermediate 64, 3 labels:
    embeddings = H  # embeddings.LayerNorm.bias
    # query, key, value, attention.output.dense, attention.output.LayerNorm, output.dense, output.LayerNorm: H each;
    # intermediate.dense: FFN
    per_layer = 7 * H + FFN
    pooler = H  # the backbone's pooler.dense.bias (its weight stays frozen)
    head = H * LABELS + LABELS  # classifier
    assert model.num_parameters(only_trainable=True) == embeddings + L * per_layer + pooler + head == 739
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    biases = {n for n, _ in model.named_parameters() if n.startswith("backbone.") and n.endswith(".bias")}
    assert trainable == biases | {"classifier.weight", "classifier.bias"}
    assert len(biases) == 1 + 8 * L + 1


def test_a_bitfit_step_moves_biases_and_head_only_and_the_checkpoint_restores_them():
    model = make(bert(), bitfit=True).train()
    before = {k: v.clone() for k, v in torch.nn.Module.state_dict(model).items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-1)
    ids, mask = batch()
    model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2])).loss.backward()
    optimizer.step()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for name, value in torch.nn.Module.state_dict(model).items():
        moved = not torch.equal(value, before[name])
        assert moved == (name in trainable), name  # every trainable tensor got a gradient here
    saved = model.state_dict()
    assert saved.keys() - {META_KEY} == trainable
    fresh = make(bert(), bitfit=True)  # the same pretrained backbone, its biases untrained
    with torch.no_grad():
        fresh.classifier.weight.zero_()
    fresh.load_state_dict(saved)
    model.eval(), fresh.eval()
    with torch.no_grad():
        got, want = (m(input_ids=ids, attention_mask=mask).logits for m in (fresh, model))
    assert torch.equal(got, want)


def test_bitfit_on_deberta_v1_trains_its_separate_query_and_value_biases():
    backbone = AutoModel.from_config(tiny_config("deberta"))
    model = build_model(backbone, ModelArguments(model_name_or_path="tiny", bitfit=True), TOK)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "backbone.encoder.layer.0.attention.self.q_bias" in trainable
    assert "backbone.encoder.layer.0.attention.self.v_bias" in trainable
    assert "backbone.encoder.layer.0.attention.self.in_proj.weight" not in trainable


def test_serving_refuses_bitfit_in_one_line(tiny_bert, tmp_path):
    from serving import Predictor

    backbone = bert()
    model = build_on(backbone, MethodConfig.from_args(ModelArguments(model_name_or_path="t", bitfit=True),
                                                     backbone.config), SEQ, 2)  # fmt: skip
    with pytest.raises(
        PTuningError, match=r"^adapter 'b' is a BitFit model .*does not share a frozen backbone\.$"
    ):
        MultiAdapterModel(backbone).add("b", model)
    config = AutoConfig.from_pretrained(tiny_bert, num_labels=2)
    saved = get_model(ModelArguments(model_name_or_path=tiny_bert, bitfit=True), SEQ, config).state_dict()
    os.makedirs(tmp_path / "bitfit")
    save_file({k: v.contiguous() for k, v in saved.items()}, str(tmp_path / "bitfit" / "model.safetensors"))
    with pytest.raises(PTuningError, match="is a BitFit model .*use run.py --do_predict") as err:
        Predictor(tiny_bert, device="cpu").attach("b", str(tmp_path / "bitfit"))
    assert "\n" not in str(err.value)


def test_run_py_trains_bitfit_by_its_flag_and_its_checkpoint_reproduces_the_dev_score(tiny_bert, tmp_path):
    """`run.py --bitfit` (the MethodArguments flag): args.json says bitfit, best_model/ holds exactly the backbone's
    biases and the head, and an eval-only run from it gives the best epoch's dev score."""
    import json

    from safetensors.torch import load_file

    import fixtures
    import run

    data = fixtures.superglue_rte(str(tmp_path / "data"))
    argv = ["--model_name_or_path", tiny_bert, "--task_name", "superglue", "--dataset_name", "rte",
            "--data_dir", data, "--output_dir", str(tmp_path / "out"), "--bitfit", "--do_eval",
            "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--num_train_epochs", "1",
            "--max_seq_length", "48", "--learning_rate", "5e-3", "--report_to", "none", "--disable_tqdm", "true",
            "--eval_strategy", "epoch", "--save_strategy", "epoch", "--seed", "7"]  # fmt: skip
    results = run.main([*argv, "--do_train"])
    with open(tmp_path / "out" / "args.json") as f:
        assert json.load(f)["model_args"]["method"] == "bitfit"
    saved = load_file(str(tmp_path / "out" / "best_model" / "model.safetensors")).keys() - {META_KEY}
    biases = {k for k in saved if k.startswith("backbone.")}
    assert saved - biases == {"classifier.weight", "classifier.bias"}
    assert biases and all(k.endswith(".bias") for k in biases)
    assert results["trainable_params"] == sum(load_file(
        str(tmp_path / "out" / "best_model" / "model.safetensors"))[k].numel() for k in saved)  # fmt: skip
    with open(tmp_path / "out" / "best_results.json") as f:
        best = json.load(f)["best_eval_accuracy"]
    argv[argv.index("--output_dir") + 1] = str(tmp_path / "again")
    best_model = str(tmp_path / "out" / "best_model")
    again = run.main([*argv, "--ptuning_checkpoint", best_model])
    assert again["eval_accuracy"] == pytest.approx(best, abs=1e-6)


# -- the method object ------------------------------------------------------------------------------------------------
def test_each_model_owns_its_method_object_and_its_modules_keep_their_checkpoint_names():
    backbone = bert()
    a, b = make(backbone, prefix=True, pre_seq_len=3), make(backbone, prompt=True, pre_seq_len=2)
    assert isinstance(a.method_impl, methods.METHODS["prefix"]) and a.method_impl.prompt is a.prefix_encoder
    assert isinstance(b.method_impl, methods.METHODS["prompt"]) and b.method_impl.prompt is b.prompt_encoder
    assert {k for k in a.state_dict() if "encoder." in k} == {"prefix_encoder.embedding.weight"}
    assert {k for k in b.state_dict() if "encoder." in k} == {"prompt_encoder.embedding.weight"}
    with pytest.raises(PTuningError, match="--prefix_init normal1 needs a method with a prompt"):
        make(bert(), bitfit=True).method_impl.initialise("normal1", backbone)


def test_one_injector_per_backbone_attached_idempotently_without_a_back_pointer():
    backbone = bert()
    first, second = make(backbone, prefix=True, pre_seq_len=3), make(backbone, prefix=True, pre_seq_len=5)
    assert first.injector is second.injector
    assert [h for h in backbone._forward_pre_hooks.values() if isinstance(h, PrefixInjector)] == [
        first.injector
    ]
    assert not hasattr(backbone, "_ptuning_injector")
    assert PrefixInjector.attach(backbone, "interface", "sdpa") is first.injector


@pytest.mark.parametrize("kind", ["bert", "deberta-v2"])  # kwarg route, module-attribute route
def test_a_forward_without_set_sees_no_prefix_left_by_an_earlier_one(kind):
    """The DeBERTa adapters keep the prefix on their modules: the injector hands it to one forward only, so a prompt
    model or a plain forward after a prefix forward on the same backbone runs as on a backbone that never saw one."""
    torch.manual_seed(0)
    backbone = AutoModel.from_config(tiny_config(kind), attn_implementation="eager").eval()
    ids, mask = batch()
    with torch.no_grad():
        plain = backbone(input_ids=ids, attention_mask=mask)[0]
        prompt = make(backbone, prompt=True, pre_seq_len=2).eval()
        before = prompt(input_ids=ids, attention_mask=mask).logits
        prefix = make(backbone, prefix=True, pre_seq_len=3, attn_implementation="eager").eval()
        with_prefix = prefix(input_ids=ids, attention_mask=mask).logits
        assert prefix.injector.consumed == 3
        # (BERT: the prefix_eager kernel now, with no prefix: equal to the stock one up to float rounding)
        after = prompt(input_ids=ids, attention_mask=mask).logits
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            backbone(input_ids=ids, attention_mask=mask)[0], plain, rtol=1e-5, atol=1e-5
        )
        assert prefix.injector.consumed == 0
        assert torch.equal(prefix(input_ids=ids, attention_mask=mask).logits, with_prefix)


def test_serving_checks_that_attention_took_every_prefix():
    """The training guard also runs in a mixed batch: a backbone whose attention drops the prefix is refused."""
    backbone = bert().eval()
    bank = MultiAdapterModel(backbone)
    bank.add("p", make(backbone, prefix=True, pre_seq_len=3, prefix_layers="1"))
    bank.add("q", make(backbone, prompt=True, pre_seq_len=2))
    ids, mask = batch()
    with torch.no_grad():
        bank(ids, mask, None, torch.tensor([0, 1, 0]))  # one prefixed depth taken: fine
        backbone.set_attn_implementation("sdpa")  # the stock kernel, which ignores prefix_kv
        bank(ids[1:2], mask[1:2], None, torch.tensor([1]))  # prompt rows only: no prefix expected
        with pytest.raises(PTuningError, match="took 0 of 1 layer prefixes"):
            bank(ids, mask, None, torch.tensor([0, 1, 0]))


class PlainRows(methods.Method):
    """A head-only method whose batched forward is the plain backbone: served with no change to MultiAdapterModel."""

    name = "plain_rows"
    not_servable = None

    @classmethod
    def stack(cls, backbone, method_list):
        return None

    @classmethod
    def encode_rows(cls, backbone, inputs, bank, rows):
        return backbone(**inputs)[0]


def test_a_new_servable_method_mixes_with_prefix_rows(monkeypatch):
    monkeypatch.setitem(methods.METHODS, "plain_rows", PlainRows)
    backbone = bert().eval()
    plain = build_on(backbone, MethodConfig(method="plain_rows", pre_seq_len=0, prefix_projection=False,
                                            prefix_hidden_size=512, prefix_layers=()), SEQ, 2)  # fmt: skip
    prefix = make(backbone, prefix=True, pre_seq_len=3)
    bank = MultiAdapterModel(backbone)
    bank.add("plain", plain), bank.add("prefix", prefix)
    ids, mask = batch()
    with torch.no_grad():
        mixed = bank(ids, mask, None, torch.tensor([1, 0, 1]))
        torch.testing.assert_close(mixed[0], plain(input_ids=ids[1:2], attention_mask=mask[1:2]).logits)
        torch.testing.assert_close(
            mixed[1], prefix(input_ids=ids[[0, 2]], attention_mask=mask[[0, 2]]).logits
        )


def test_no_method_name_branches_outside_the_method_files():
    """MultiAdapterModel, the Predictor, the checkpoint and the heads ask the method; only model/methods.py,
    model/prefix_tuning.py (the methods) and model/config.py (the flags) name one."""
    allowed = {"model/methods.py", "model/prefix_tuning.py", "model/config.py"}
    branch = re.compile(r"""(==|!=|\bin)\s*\(?\s*["'](finetune|prefix|prompt|bitfit)["']""")
    found = []
    for folder in ("model", "serving"):
        for name in sorted(os.listdir(os.path.join(ROOT, folder))):
            path = f"{folder}/{name}"
            if name.endswith(".py") and path not in allowed:
                for n, line in enumerate(open(os.path.join(ROOT, path)), 1):
                    if branch.search(line):
                        found.append(f"{path}:{n}: {line.strip()}")
    assert not found
