"""The checkpoint format: the model's state_dict, reduced to what the method saves, plus a meta record.

What is saved is the method's choice (model/methods.py `Method.saves`): the prompt/prefix and the head when the
backbone is frozen, everything when fine-tuning. The meta record `ptuning_meta` (JSON as a uint8 tensor, so that
safetensors and the HF Trainer carry it like any tensor) holds the backbone sizes, the identifying fields of the
MethodConfig, the head and its label count. Loading compares it with the model's own and refuses a checkpoint of
another backbone or setting with one clear error, before any tensor is copied.

The saved record also holds the whole MethodConfig ("method_config") and, from run.py, under "task", what inference
needs (`task_record`: family, dataset, label names, the preprocessing arguments, the family's own arguments, the
backbone's name, your own data's description); predict.py reads them with `read_meta`. They describe the checkpoint
and are not compared.
"""

from __future__ import annotations

import dataclasses
import json
import os

import torch
from torch import nn

from model.config import PTuningError

META_KEY = "ptuning_meta"


# the backbone's sizes a checkpoint records (its HF config's fields): another backbone is refused
SIZE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads")


def meta(model) -> dict:
    """What a checkpoint of `model` was built for: backbone sizes (HF config), method, head."""
    config = model.config
    return {
        **{key: getattr(config, key) for key in SIZE_KEYS},
        **model.method_config.checkpoint_fields(),
        "task_type": model.task_type,
        "num_labels": config.num_labels,
    }


# the data arguments that change how raw examples become features (predict.py preprocesses with them)
PREPROCESSING_ARGS = ("max_seq_length", "doc_stride", "template_id")


def task_record(task, data_args, family_args=(), backbone_name: str | None = None) -> dict:
    """What predicting with a checkpoint needs besides its tensors: the task, its label names, the preprocessing
    and family arguments it was trained with, the backbone's name (informative: sizes are checked) and, for your
    own data, the description its training file resolved to."""
    task_args = next((a for a in family_args if task.args.cls and isinstance(a, task.args.cls)), None)
    return {
        "family": task.family,
        "dataset": task.name,
        "labels": list(task.label_list) if task.label_list else None,
        "data_args": {k: getattr(data_args, k) for k in PREPROCESSING_ARGS if hasattr(data_args, k)},
        "task_args": dataclasses.asdict(task_args) if task_args is not None else None,
        "backbone": backbone_name,
        # a dataset of your own (tasks/custom.py): what its training file said (labels, text columns); serving
        # rebuilds the task from it (Task.from_record)
        "own_data": task.own_data.description if task.own_data else None,
    }


def state_dict(model, destination=None, prefix: str = "", keep_vars: bool = False) -> dict:
    """The saved part of `model`'s state_dict (keys under `prefix`) and the meta record (+ its task record)."""
    full = nn.Module.state_dict(model, prefix=prefix, keep_vars=keep_vars)
    out = {k: v for k, v in full.items() if model.method_impl.saves(k[len(prefix) :])}
    record = meta(model)
    record["method_config"] = dataclasses.asdict(
        model.method_config
    )  # every method field (shift_positions ...)
    if getattr(model, "task_record", None) is not None:
        record["task"] = model.task_record
    out[prefix + META_KEY] = torch.tensor(
        list(json.dumps(record, sort_keys=True).encode()), dtype=torch.uint8
    )
    if destination is not None:
        destination.update(out)
        return destination
    return out


def load_state_dict(model, state_dict, strict: bool = True, assign: bool = False):
    """Check the meta record, then load the saved tensors; `strict`: exactly the keys `state_dict()` would save."""
    state_dict = dict(state_dict)
    record = state_dict.pop(META_KEY, None)
    if record is None:
        raise PTuningError("not a P-tuning checkpoint (no ptuning_meta record): save it with this project.")
    saved, own = decode(record), meta(model)
    diffs = {k: (saved.get(k), v) for k, v in own.items() if saved.get(k) != v}
    if diffs:
        lines = ", ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in sorted(diffs.items()))
        raise PTuningError(
            f"this checkpoint was trained for another backbone or setting ({lines}); load it onto "
            "the backbone and flags it was trained with."
        )
    expected = {k for k in nn.Module.state_dict(model) if model.method_impl.saves(k)}
    missing = sorted(expected - state_dict.keys())
    unexpected = sorted(state_dict.keys() - expected)
    if strict and (missing or unexpected):
        raise PTuningError(f"checkpoint mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    result = nn.Module.load_state_dict(model, state_dict, strict=False, assign=assign)
    return type(result)(missing, list(result.unexpected_keys))


BEST_MODEL = "best_model"


def resolve_checkpoint_dir(path: str) -> str:
    """The folder whose model.safetensors a --ptuning_checkpoint PATH stands for: a run folder (one holding a
    best_model/ subfolder) stands for its best_model/, the best dev epoch, even though the run also saved its last
    epoch's weights at the top level; any other folder stands for itself."""
    best = os.path.join(path, BEST_MODEL)
    return best if os.path.isfile(os.path.join(best, "model.safetensors")) else path


def decode(record: torch.Tensor) -> dict:
    return json.loads(bytes(record.tolist()).decode())


def read_meta(directory: str) -> dict:
    """The meta record of the checkpoint in `directory` (a best_model/ folder), without loading its other tensors."""
    from safetensors import safe_open

    path = os.path.join(directory, "model.safetensors")
    if not os.path.isfile(path):
        raise PTuningError(f"{path} does not exist: point at a best_model/ folder written by run.py.")
    try:
        with safe_open(path, framework="pt") as f:
            if META_KEY not in f.keys():
                raise PTuningError(
                    f"{path} is not a P-tuning checkpoint (no {META_KEY} record): save it with run.py."
                )
            return decode(f.get_tensor(META_KEY))
    except PTuningError:
        raise
    except Exception as err:  # safetensors' SafetensorError derives from Exception only
        raise PTuningError(
            f"{path} cannot be read ({err}): it is damaged or not a safetensors file."
        ) from None
