"""The models the GPU check builds, on any device: random backbones saved as local folders (tiny ones for the
correctness and SDPA sections, the speed Spec's for speed and compile), loaded through the project's own get_model.

Every section loads through `load`, so what is checked is what run.py builds (--backbone_dtype included)."""

from __future__ import annotations

import gc
import os

import torch
from transformers import AutoConfig, AutoModel

from benchmarks.common.models import model_args
from benchmarks.common.spec import Spec
from benchmarks.common.tiny import tiny_config
from model.utils import TaskType, get_model

P = 6  # prefix length of the tiny models
# benchmarks/common/tiny.py's configs with 2 heads of 64 (roberta-large's head size) and HF's init std
GPU_SIZES = dict(
    hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256, initializer_range=0.02
)
AMP = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def save_backbone(kind: str, root: str, seed: int = 0, **config_kw) -> str:
    """A random tiny backbone of `kind` (GPU_SIZES, then config_kw) saved as a local model folder (what
    --model_name_or_path takes)."""
    tag = "".join(f"-{k}{v}" for k, v in sorted(config_kw.items()))
    path = os.path.join(root, f"{kind}-{seed}{tag}")
    if not os.path.isdir(path):
        torch.manual_seed(seed)
        AutoModel.from_config(tiny_config(kind, **{**GPU_SIZES, **config_kw})).save_pretrained(path)
    return path


def save_large(spec: Spec, path: str, device) -> str:
    """The random backbone of `spec`, saved once so every method loads the same weights through get_model."""
    torch.manual_seed(0)
    try:  # random init on the GPU: seconds instead of a CPU init of 355 M parameters
        with torch.device(device):
            backbone = AutoModel.from_config(spec.config())
    except Exception:
        backbone = AutoModel.from_config(spec.config())
    backbone.save_pretrained(path)
    del backbone
    free(torch.device(device))
    return path


def load(
    path,
    device,
    method="prefix",
    attn="sdpa",
    shift=True,
    dropout=0.0,
    seed=1,
    scale_prefix=True,
    config_kw=None,
    **flags,
):
    """get_model(...) for sequence classification, on `device`; with scale_prefix the prefix weights are drawn
    N(0, 1) instead of N(0, 0.02), so that a wrong prefix shows far above the tolerance. config_kw overrides the
    saved config (e.g. fewer layers: the folder's extra layers are then not loaded)."""
    pre_seq_len = flags.pop("pre_seq_len", P)
    args = model_args(path, method, pre_seq_len, attn, dropout, shift_positions=shift, **flags)
    torch.manual_seed(seed)
    model = get_model(
        args, TaskType.SEQUENCE_CLASSIFICATION, AutoConfig.from_pretrained(path, **(config_kw or {}))
    )
    prefix = getattr(model, "prefix_encoder", None)  # P-tuning v2's table (model/prefix_tuning.py)
    if prefix is not None and scale_prefix:
        with torch.no_grad():
            prefix.embedding.weight.normal_()
    return model.to(device)


def autocast_for(device, precision):
    dtype = AMP[precision]
    return torch.autocast(torch.device(device).type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def free(device) -> int | None:
    """Collect garbage and empty the CUDA cache; the bytes still allocated (CUDA), else None."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        return torch.cuda.memory_allocated(device)
    return None


def short_error(err: BaseException, n: int = 300) -> str:
    text = f"{type(err).__name__}: {err}".replace("\n", " ")
    return text[:n]
