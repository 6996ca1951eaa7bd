"""Loading, one layer below run.py, shared by training (run.py), serving (serving/) and the benchmarks:

- `check_model_path`: a path that can only be local and does not exist is one error, before any Hub look-up;
- `load_config`: the backbone's config with the task's labels;
- `load_tokenizer`: the tokenizer as the task needs it (add_prefix_space for word lists on RoBERTa-style tokenizers,
  a fast one where the task needs offsets), refusing an empty one or one larger than the embeddings;
- `vocabulary`: a tokenizer's pieces and special ids (for --prefix_init tokens);
- `load_backbone`: the pretrained backbone with its quirks applied once (pooler, attention kernel), float32 unless
  asked, never the Hub's kernels;
- `read_checkpoint`: a run folder or best_model/ read into its meta record (method config, task record) and
  tensors, refused in one line when it was trained on another backbone size, with a method this version does not
  know, or holds non-finite weights.
Every problem a user can fix is a PTuningError naming the path and the fix.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from model.backbones import get_backbone
from model.checkpoint import SIZE_KEYS, read_meta, resolve_checkpoint_dir
from model.config import PTuningError


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


def load_config(path: str, task=None, *, cache_dir=None, revision="main", trust_remote_code=False):
    """The backbone's config; with `task`, its label count and names (id2label) and its name (finetuning_task)."""
    kwargs = {}
    if task is not None:
        kwargs = {"num_labels": task.num_labels, "finetuning_task": f"{task.family}-{task.name}"}
        if task.label_list:
            kwargs["id2label"] = dict(enumerate(task.label_list))
            kwargs["label2id"] = {label: i for i, label in enumerate(task.label_list)}
    try:
        return AutoConfig.from_pretrained(
            path, cache_dir=cache_dir, revision=revision, trust_remote_code=trust_remote_code, **kwargs
        )
    except OSError as err:
        raise PTuningError(
            f"cannot load a model config from {path!r}: give a local directory holding config.json (and weights), "
            f"or a Hub id while online. ({str(err).splitlines()[0]})"
        ) from None


def load_tokenizer(
    path: str, task, config, *, cache_dir=None, revision="main", use_fast=True, trust_remote_code=False
):
    """The tokenizer of `path` as `task` needs it with this backbone (model/backbones.py's quirks)."""
    quirks = get_backbone(config)
    kwargs = {"add_prefix_space": True} if task.hints.pretokenized and quirks.add_prefix_space else {}
    fix = "the directory needs the tokenizer files (tokenizer.json or vocab files), or pass --tokenizer_name"
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path,
            cache_dir=cache_dir,
            revision=revision,
            use_fast=use_fast and (quirks.use_fast_tokenizer or task.hints.fast_tokenizer),
            trust_remote_code=trust_remote_code,
            **kwargs,
        )
    except (OSError, ValueError, TypeError) as err:
        raise PTuningError(
            f"cannot load a tokenizer from {path!r}: {fix}. ({str(err).splitlines()[0]})"
        ) from None
    # transformers 5 builds an EMPTY tokenizer (special tokens only) from a directory without tokenizer files
    if len(tokenizer) <= len(set(tokenizer.all_special_tokens)):
        raise PTuningError(f"cannot load a tokenizer from {path!r}: it has no vocabulary; {fix}.")
    if len(tokenizer) > config.vocab_size:
        raise PTuningError(
            f"the tokenizer of {path!r} has {len(tokenizer)} tokens but the model only {config.vocab_size} "
            "embeddings: tokenizer and model do not belong together."
        )
    return tokenizer


def vocabulary(path: str) -> tuple[list[str], set[int]]:
    """The tokenizer of `path`'s pieces (by id) and its special ids (--prefix_init tokens samples words from them)."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    return tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))), set(tokenizer.all_special_ids)


def load_backbone(
    path: str,
    dtype: torch.dtype = torch.float32,
    *,
    pooler: bool | None = None,
    attn_implementation=None,
    **kwargs,
):
    """AutoModel.from_pretrained(path, **kwargs) in `dtype`, with the Hub's `kernels` off: the one way this project
    loads a backbone. With `pooler` (whether the head reads the backbone's pooler) and `attn_implementation`, the
    backbone's quirks decide: a pooler only where the backbone has one, 'eager' where its attention has no kernel
    interface (DeBERTa).

    dtype: float32 unless --backbone_dtype says otherwise, as transformers 4.x (the original's) loaded; 5.x defaults to
    "auto", the dtype of the saved weights, so a checkpoint saved in float16 would give a half-precision backbone.
    kernels: transformers 5.25 depends on `kernels` and from_pretrained defaults to use_kernels=True: on CUDA,
    model.eval() then swaps the activations for kernels downloaded from the Hub, and offline (HF_HUB_OFFLINE=1) it
    stops at the first evaluation with "Version 1 of 'kernels-community/activation' is not available in the local
    cache" (seen on an H200 by benchmarks/gpu_check.py). The frozen backbone must stay the plain PyTorch model the
    prefix was checked on.
    """
    if pooler is not None or attn_implementation is not None:
        quirks = get_backbone(kwargs.get("config") or AutoConfig.from_pretrained(path))
        if pooler is not None and quirks.pooler == "backbone":
            kwargs["add_pooling_layer"] = pooler
        if attn_implementation is not None:
            kwargs["attn_implementation"] = (
                attn_implementation if quirks.attention == "interface" else "eager"
            )
    report = logging.getLogger("transformers.modeling_utils")
    quiet = _UnusedPoolerReport() if kwargs.get("add_pooling_layer") is False else None
    if quiet:
        report.addFilter(quiet)
    try:
        return AutoModel.from_pretrained(path, dtype=dtype, use_kernels=False, **kwargs)
    finally:
        if quiet:
            report.removeFilter(quiet)


class _UnusedPoolerReport(logging.Filter):
    """Drops transformers' load report when all it says is that the pooler's saved weights went unused: the head of
    a token-level task does not read the pooler, so it is not built (a bold "UNEXPECTED" report on every NER run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "LOAD REPORT" not in text:
            return True
        rows = [line.split("|") for line in text.splitlines() if line.count("|") >= 2]
        keys = [
            (cells[0].strip(), cells[1].strip()) for cells in rows if cells[1].strip() not in ("Status", "")
        ]
        keys = [(key, status) for key, status in keys if not set(key) <= set("-")]
        return not keys or not all(
            key.startswith("pooler.") and status == "UNEXPECTED" for key, status in keys
        )


@dataclass
class Checkpoint:
    path: str  # the folder read (a run folder resolves to its best_model/)
    meta: (
        dict  # the ptuning_meta record: sizes, method, method_config, task_type, num_labels, task (run.py's)
    )
    tensors: dict[str, torch.Tensor]


def read_checkpoint(path: str, config, backbone: str = "the backbone") -> Checkpoint:
    """The checkpoint at `path` (a run folder stands for its best_model/), checked against the backbone `config`:
    sizes, a method this version knows, finite weights. `backbone` names the loaded backbone in the messages."""
    from safetensors.torch import load_file

    from model.methods import METHODS

    folder = resolve_checkpoint_dir(path)
    meta = read_meta(folder)  # a missing, damaged or foreign file: PTuningError naming it
    sizes = [
        f"{k} {meta.get(k)!r} vs {getattr(config, k)!r}"
        for k in SIZE_KEYS
        if meta.get(k) != getattr(config, k)
    ]
    trained_on = (meta.get("task") or {}).get("backbone")
    if sizes:
        raise PTuningError(
            f"{folder} was trained on another backbone or size ({', '.join(sizes)}; checkpoint vs {backbone}): "
            "load the backbone it was trained on" + (f" ({trained_on})." if trained_on else ".")
        )
    if meta.get("method") not in METHODS:
        raise PTuningError(
            f"{folder} was trained with method {meta.get('method')!r}, which this version does not know (known: "
            f"{', '.join(METHODS)})."
        )
    tensors = load_file(os.path.join(folder, "model.safetensors"))
    bad = next(
        (k for k, t in tensors.items() if t.is_floating_point() and not bool(t.isfinite().all())), None
    )
    if bad is not None:
        raise PTuningError(
            f"{folder}/model.safetensors holds non-finite weights (NaN or inf) in {bad}: its training diverged; use "
            "an earlier checkpoint of the run, or retrain it."
        )
    return Checkpoint(folder, meta, tensors)
