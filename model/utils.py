"""Entry point kept from the original: `from model.utils import get_model, TaskType`."""

from __future__ import annotations

import logging

import torch

from model.backbones import get_backbone
from model.config import MethodConfig
from model.loading import load_backbone
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


def get_model(model_args, task_type: TaskType, config):
    """Load the pretrained backbone of `model_args.model_name_or_path` with `config` and wrap it for `task_type`.

    As in the original, --hidden_dropout_prob also becomes the backbone's hidden dropout (config.hidden_dropout_prob).
    """
    get_backbone(config)  # unsupported model_type -> clear error before loading weights
    config.hidden_dropout_prob = model_args.hidden_dropout_prob
    backbone = load_backbone(
        model_args.model_name_or_path,
        getattr(torch, model_args.backbone_dtype),  # the prefix encoder and the head are built float32
        pooler=needs_pooler(config, task_type),
        attn_implementation=model_args.attn_implementation,
        config=config,
        cache_dir=model_args.cache_dir,
        revision=model_args.model_revision,
        trust_remote_code=model_args.trust_remote_code,
    )
    return build_model(backbone, model_args, task_type)
