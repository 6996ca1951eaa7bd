"""--init_prefix_from: start training from another run's trained prefix (or prompt), and its head when the labels agree.

Prefix transfer (as SPoT, Vu et al. 2022, starts a target task's prompt from a source task's): the method's part of the checkpoint (the
PrefixEncoder or PromptEncoder tensors) replaces this model's freshly initialised one, so the tensors must fit: the
same backbone size (model/loading.py read_checkpoint), method, P and prefix layout (projection and its hidden size,
prefixed layers); each mismatch is one PTuningError naming both values. The head (model/ptuning.py head_names: the
classifier, DeBERTa's ContextPooler) is loaded too only when it means the same outputs: the same head kind and the
same labels, same names in the same order (label-less tasks: regression, multiple choice, QA compare kind and size);
otherwise this run keeps its own new head, initialised as any run's (the same seed gives the same head), and the log
says so. Dropout, positions and the task may differ: they do not shape the tensors.

--ptuning_checkpoint differs: it loads the whole trained model for --do_eval/--do_predict and refuses any other
setting or label set (model/checkpoint.py load_state_dict).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from model.config import MethodArguments, PTuningError
from model.loading import read_checkpoint

logger = logging.getLogger(__name__)


def _flag(method) -> str:
    """The flag that chooses `method` (model/config.py METHOD_FLAGS; fine-tuning has none)."""
    return f"--{method}" if method in MethodArguments.METHOD_FLAGS else "no method flag"


def layout_differences(saved: dict, method_config) -> list[str]:
    """How a checkpoint's method record (its meta: method, pre_seq_len, prefix_projection, prefix_hidden_size,
    prefix_layers) differs from this run's MethodConfig where the prompt's tensors depend on it, one phrase each."""
    own = method_config.checkpoint_fields()
    if saved.get("method") != own["method"]:
        method, ours = saved.get("method"), own["method"]
        return [f"method {method} ({_flag(method)}) vs {ours} ({_flag(ours)})"]
    keys = ["pre_seq_len", "prefix_projection", "prefix_layers"]
    if own["prefix_projection"] and saved.get("prefix_projection"):  # the MLP's width exists only with it
        keys.append("prefix_hidden_size")
    return [f"--{k} {saved.get(k)!r} vs {own[k]!r}" for k in keys if saved.get(k) != own[k]]


def same_head(meta: dict, model, labels: Sequence[str] | None) -> tuple[bool, str]:
    """Whether the checkpoint's head means this model's outputs, and why (for the log)."""
    theirs = (meta.get("task") or {}).get("labels", "unrecorded")
    ours = list(labels) if labels else None
    if meta.get("task_type") != model.task_type:
        return False, f"its head is a {meta.get('task_type')} head, this run's a {model.task_type} one"
    if meta.get("num_labels") != model.config.num_labels or theirs != ours:
        what = "no record of its labels" if theirs == "unrecorded" else f"labels {_short(theirs)}"
        return False, f"it has {what}, this task {_short(ours)}"
    return True, f"the same labels {_short(ours)}"


def _short(labels) -> str:
    """Label names for the log: up to 6 in full, else the first 5 and the count."""
    if labels is None:
        return "(no label names)"
    if len(labels) <= 6:
        return repr(labels)
    return f"[{', '.join(map(repr, labels[:5]))}, ... ({len(labels)} labels)]"


def transfer_prefix(model, path: str, labels: Sequence[str] | None) -> set[str]:
    """Load the prefix/prompt of the checkpoint at `path` (a run folder stands for its best_model/) into `model`
    (a PTuningModel built for this run), and its head when `labels` (this task's label names, None for label-less
    tasks) are the checkpoint's. Returns the keys loaded. Draws no random number, so a new head is exactly the one
    this seed gives without the flag."""
    checkpoint = read_checkpoint(path, model.config, model.config.name_or_path)
    where = f"--init_prefix_from {checkpoint.path}"
    problems = layout_differences(checkpoint.meta, model.method_config)
    if problems:
        raise PTuningError(
            f"{where} was trained with {', '.join(problems)} (checkpoint vs this run): a prefix starts another run "
            "only with the same method, P and layout; pass those flags as it was trained."
        )
    head = model.head_names()
    own = {k: v for k, v in nn.Module.state_dict(model).items() if model.method_impl.saves(k)}
    prompt_keys = own.keys() - head
    keep_head, why = same_head(checkpoint.meta, model, labels)
    wanted = prompt_keys | (head if keep_head else set())
    missing = sorted(wanted - checkpoint.tensors.keys())
    if missing:
        raise PTuningError(
            f"{where} lacks {', '.join(missing[:3])}: it is not a complete checkpoint of its run."
        )
    for key in sorted(wanted):
        if checkpoint.tensors[key].shape != own[key].shape:
            raise PTuningError(
                f"{where}: {key} has shape {tuple(checkpoint.tensors[key].shape)} vs {tuple(own[key].shape)} in "
                "this run: it was trained on another backbone or layout."
            )
    with torch.no_grad():
        for key in wanted:
            own[key].copy_(checkpoint.tensors[key])
    if keep_head:
        logger.info("%s: started the %s and the head from it (%s).", where, model.method, why)
    else:
        logger.warning("%s: started the %s from it and a NEW head (%s).", where, model.method, why)
    return wanted
