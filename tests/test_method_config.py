"""model/config.py and model/methods.py: the method as one config object, one dispatch table.

Tiny random backbones from tests/tiny.py; nothing is downloaded."""

import dataclasses
from dataclasses import dataclass, field

import pytest
import torch
from transformers import AutoModel, HfArgumentParser

from model import methods
from model.config import MethodArguments, MethodConfig, PTuningError
from model.heads import PTuningForSequenceClassification
from tiny import tiny_config

P = 5


@dataclass
class Args(
    MethodArguments
):  # what arguments.py's ModelArguments does: non-default fields before the method's
    model_name_or_path: str = field(metadata={"help": "model"})
    hidden_dropout_prob: float = 0.1
    attn_implementation: str = "sdpa"


def test_method_arguments_parse_as_part_of_another_dataclass():
    (args,) = HfArgumentParser(Args).parse_args_into_dataclasses(
        args=["--model_name_or_path", "m", "--prefix", "--pre_seq_len", "7", "--prefix_layers", "1-2"]
    )
    assert (args.method, args.pre_seq_len, args.prefix_layers) == ("prefix", 7, "1-2")
    assert Args(model_name_or_path="m").method == "finetune"
    assert Args(model_name_or_path="m", prompt=True).method == "prompt"


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"prefix": True, "prompt": True}, "exclusive"),
        ({"prefix": True, "pre_seq_len": 0}, "--pre_seq_len must be >= 1"),
        ({"prefix_layers": "0"}, "only applies to --prefix"),
        ({"prefix": True, "prefix_init": "ones"}, "--prefix_init must be"),
        ({"prefix_dropout": 0.1, "prompt": True}, "only applies to --prefix"),
    ],
)
def test_method_argument_checks(flags, message):
    with pytest.raises(ValueError, match=message):
        Args(model_name_or_path="m", **flags)


def test_every_method_flag_has_a_row_in_the_dispatch_table():
    assert set(MethodArguments.METHOD_FLAGS) | {"finetune"} == set(methods.METHODS)


def test_the_config_is_resolved_once_against_the_backbone():
    config = tiny_config("bert")  # 3 layers
    prefix = MethodConfig.from_args(Args(model_name_or_path="m", prefix=True, pre_seq_len=P), config)
    assert prefix.prefix_layers == (0, 1, 2) and prefix.pre_seq_len == P
    finetune = MethodConfig.from_args(
        Args(model_name_or_path="m", pre_seq_len=P, prefix_projection=True), config
    )
    assert (finetune.pre_seq_len, finetune.prefix_projection, finetune.prefix_layers) == (0, False, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        prefix.pre_seq_len = 3
    assert prefix.checkpoint_fields() == {
        "method": "prefix",
        "pre_seq_len": P,
        "prefix_projection": False,
        "prefix_hidden_size": 512,
        "prefix_layers": [0, 1, 2],
    }


def test_the_model_keeps_the_config_whole():
    torch.manual_seed(0)
    backbone = AutoModel.from_config(tiny_config("bert"))
    config = MethodConfig.from_args(Args(model_name_or_path="m", prefix=True, pre_seq_len=P), backbone.config)
    model = PTuningForSequenceClassification(backbone, config)
    assert model.method_config is config and (model.method, model.pre_seq_len) == ("prefix", P)
    with pytest.raises(PTuningError, match="unknown method 'lora'"):
        PTuningForSequenceClassification(backbone, dataclasses.replace(config, method="lora"))


# -- a method that trains inside the backbone (BitFit): the method names its parameters, the checkpoint follows -------
def test_a_method_that_trains_inside_the_backbone_is_saved_and_restored():
    config = MethodConfig(
        method="bitfit", pre_seq_len=0, prefix_projection=False, prefix_hidden_size=512, prefix_layers=()
    )

    def build(seed):
        torch.manual_seed(0)
        backbone = AutoModel.from_config(tiny_config("bert"))
        torch.manual_seed(seed)
        return PTuningForSequenceClassification(backbone, config).eval()

    trained, fresh = build(1), build(2)
    trainable = {n for n, p in trained.named_parameters() if p.requires_grad}
    assert "backbone.encoder.layer.0.attention.self.query.bias" in trainable
    assert "backbone.encoder.layer.0.attention.self.query.weight" not in trainable
    with torch.no_grad():
        for name in trainable:
            trained.get_parameter(name).add_(1.0)  # "training"
    saved = trained.state_dict()
    assert trainable == saved.keys() - {"ptuning_meta"}
    fresh.load_state_dict(saved)
    for name in trainable:
        assert torch.equal(fresh.get_parameter(name), trained.get_parameter(name)), name
    torch.manual_seed(0)
    pretrained = AutoModel.from_config(tiny_config("bert")).state_dict()  # the backbones' own draws
    for key, value in trained.backbone.state_dict().items():  # weights: not re-initialised, not "trained"
        if key.endswith(".weight"):
            assert torch.equal(value, pretrained[key]), key
