"""Entry point kept from the original: `from model.utils import get_model, TaskType`."""

from __future__ import annotations

import logging
import os

import torch
from transformers import AutoModel

from model.backbones import get_backbone
from model.config import MethodConfig
from tasks.task_type import TaskType  # the head kind lives with the tasks; re-exported here

logger = logging.getLogger(__name__)


def head_class(task_type: TaskType):
    from model import heads

    return {
        TaskType.SEQUENCE_CLASSIFICATION: heads.PTuningForSequenceClassification,
        TaskType.MULTIPLE_CHOICE: heads.PTuningForMultipleChoice,
        TaskType.TOKEN_CLASSIFICATION: heads.PTuningForTokenClassification,
        TaskType.QUESTION_ANSWERING: heads.PTuningForQuestionAnswering,
    }[task_type]


def needs_pooler(config, task_type: TaskType) -> bool:
    return get_backbone(config).pooler == "backbone" and task_type in (
        TaskType.SEQUENCE_CLASSIFICATION,
        TaskType.MULTIPLE_CHOICE,
    )


def build_model(backbone, model_args, task_type: TaskType):
    """Wrap an already built backbone (AutoModel) with the method and head that `model_args` select."""
    method_config = MethodConfig.from_args(model_args, backbone.config)  # the method, resolved once
    model = head_class(task_type)(backbone, method_config)
    # --prefix_init (model/methods.py); the default "normal" keeps init_new_weights' draw untouched
    tokenizer_path = model_args.tokenizer_name or model_args.model_name_or_path
    model.method_impl.initialise(method_config.prefix_init, backbone, tokenizer_path=tokenizer_path)
    trainable, total = model.num_parameters(only_trainable=True), model.num_parameters()
    logger.info(
        "%s: %d trainable parameters of %d (%.3f%%)",
        method_config.method,
        trainable,
        total,
        100 * trainable / total,
    )
    return model


def looks_local(path: str) -> bool:
    """Whether a model name can only mean a local folder: a Hub id is NAME or OWNER/NAME, so a path that starts with
    /, ./, ../ or ~, has more than one /, ends with /, or whose first part is a local folder is not one."""
    parts = path.split("/")
    return (
        path.startswith(("/", "./", "../", "~"))
        or path.endswith("/")
        or len(parts) > 2
        or (len(parts) == 2 and os.path.isdir(parts[0]))
    )


def check_model_path(flag: str, path: str) -> None:
    """A model path that can only be local and does not exist is one ValueError, before any Hub look-up (which would
    retry for tens of seconds, or online fetch a Hub repo of that name)."""
    if looks_local(path) and not os.path.isdir(os.path.expanduser(path)):
        raise ValueError(
            f"{flag} {path!r} is not a folder here (it cannot be a Hub id of the form NAME or OWNER/NAME): check "
            "the path, or give the folder that holds config.json and the weights."
        )


def load_backbone(path: str, dtype: torch.dtype = torch.float32, **kwargs):
    """AutoModel.from_pretrained(path, **kwargs) in `dtype`, with the Hub's `kernels` off: the one way this project
    loads a backbone.

    dtype: float32 unless --backbone_dtype says otherwise, as transformers 4.x (the original's) loaded; 5.x defaults to
    "auto", the dtype of the saved weights, so a checkpoint saved in float16 would give a half-precision backbone.
    kernels: transformers 5.25 depends on `kernels` and from_pretrained defaults to use_kernels=True: on CUDA,
    model.eval() then swaps the activations for kernels downloaded from the Hub, and offline (HF_HUB_OFFLINE=1) it
    stops at the first evaluation with "Version 1 of 'kernels-community/activation' is not available in the local
    cache" (seen on an H200 by benchmarks/gpu_check.py). The frozen backbone must stay the plain PyTorch model the
    prefix was checked on.
    """
    return AutoModel.from_pretrained(path, dtype=dtype, use_kernels=False, **kwargs)


def get_model(model_args, task_type: TaskType, config):
    """Load the pretrained backbone of `model_args.model_name_or_path` with `config` and wrap it for `task_type`.

    As in the original, --hidden_dropout_prob also becomes the backbone's hidden dropout (config.hidden_dropout_prob).
    """
    quirks = get_backbone(config)  # unsupported model_type -> clear error before loading weights
    config.hidden_dropout_prob = model_args.hidden_dropout_prob
    kwargs = {}
    if quirks.pooler == "backbone":
        kwargs["add_pooling_layer"] = needs_pooler(config, task_type)
    attn = model_args.attn_implementation if quirks.attention == "interface" else "eager"
    backbone = load_backbone(
        model_args.model_name_or_path,
        config=config,
        cache_dir=model_args.cache_dir,
        revision=model_args.model_revision,
        trust_remote_code=model_args.trust_remote_code,
        attn_implementation=attn,
        dtype=getattr(torch, model_args.backbone_dtype),  # the prefix encoder and the head are built float32
        **kwargs,
    )
    return build_model(backbone, model_args, task_type)
