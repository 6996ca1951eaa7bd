"""From raw examples to model inputs: cached batched tokenisation, sample limits and collators."""

from __future__ import annotations

import logging
import math
import os
from functools import partial

import datasets
import torch
from datasets.fingerprint import Hasher
from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding, default_data_collator

logger = logging.getLogger(__name__)

LIMITS = {"train": "max_train_samples", "validation": "max_eval_samples"}  # test splits: max_predict_samples


def limit_samples(raw: datasets.DatasetDict, data_args) -> datasets.DatasetDict:
    """Keep the first N EXAMPLES of each split (before tokenisation, so QA features stay aligned with examples)."""
    out = {}
    for split, ds in raw.items():
        n = getattr(data_args, LIMITS.get(split, "max_predict_samples"))
        out[split] = ds.select(range(min(n, len(ds)))) if n is not None else ds
    return datasets.DatasetDict(out)


def cache_dir() -> str:
    root = os.environ.get("HF_DATASETS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "huggingface", "datasets"
    )
    return os.path.join(root, "ptuning_v2")


def tokenize(raw: datasets.DatasetDict, task, tokenizer, data_args) -> datasets.DatasetDict:
    """task.preprocess over every split with datasets.map(batched=True), cached on disk.

    The cache key hashes the raw examples, the preprocessing code, the tokenizer and every data argument, so the
    same run twice is a cache hit and any change re-tokenises; --overwrite_cache forces it."""
    os.makedirs(cache_dir(), exist_ok=True)
    fn = partial(task.preprocess, tokenizer=tokenizer, data_args=data_args)
    out = {}
    for split, ds in raw.items():
        key = Hasher.hash(
            [task.family, task.name, split, Hasher.hash(ds.data), task.preprocess, tokenizer, vars(data_args)]
        )
        out[split] = ds.map(
            fn,
            batched=True,
            remove_columns=ds.column_names,
            num_proc=data_args.preprocessing_num_workers,
            load_from_cache_file=not data_args.overwrite_cache,
            cache_file_name=os.path.join(cache_dir(), f"{task.family}-{task.name}-{split}-{key}.arrow"),
            desc=f"Tokenising {split}",
        )
    return datasets.DatasetDict(out)


def has_labels(features: datasets.Dataset) -> bool:
    """False for unlabelled test splits: no label column, or labels all -1 / -100 / NaN (other regression floats
    count; NaN is tasks/custom.py's unlabelled score)."""
    if "start_positions" in features.column_names:
        return True
    if "labels" not in features.column_names or len(features) == 0:
        return False
    for row in features["labels"]:
        for value in row if isinstance(row, list) else [row]:
            if value >= 0 or (isinstance(value, float) and not math.isnan(value)):
                return True
    return False


def drop_placeholder_labels(features: datasets.DatasetDict, splits) -> datasets.DatasetDict:
    """Unlabelled test splits (labels all -1 / -100) lose their label column: they are for prediction only, and
    no forward pass (not even the longest-example probe) may compute a loss on placeholder labels."""
    for split in splits:
        if split in features and not has_labels(features[split]) and "labels" in features[split].column_names:
            features[split] = features[split].remove_columns("labels")
    return features


class MultipleChoiceCollator:
    """Pads (C choices × T tokens) features dynamically: flatten to (B·C) rows, pad, reshape to (B, C, T)."""

    def __init__(self, tokenizer, pad_to_multiple_of=None):
        self.tokenizer, self.pad_to_multiple_of = tokenizer, pad_to_multiple_of

    def __call__(self, features):
        labels = torch.tensor([f.pop("labels") for f in features]) if "labels" in features[0] else None
        B, C = len(features), len(features[0]["input_ids"])
        flat = [{k: v[c] for k, v in f.items()} for f in features for c in range(C)]
        batch = self.tokenizer.pad(flat, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt")
        batch = {k: v.view(B, C, -1) for k, v in batch.items()}  # (B, C, T)
        if labels is not None:
            batch["labels"] = labels
        return batch


def build_collator(task, tokenizer, data_args, training_args):
    """The batch collator. Static padding (--pad_to_max_length) has one shape already; dynamic padding pads each
    batch to its longest row, rounded up to --pad_to_multiple_of (training/levers.py; set by --torch_compile) or to
    8 under --fp16/--bf16. Padded positions are masked (attention_mask 0, tag labels -100), except in QA's span
    softmax (training/levers.py says what the rounding changes)."""
    half = 8 if (training_args.fp16 or training_args.bf16) else None
    multiple = getattr(training_args, "pad_to_multiple_of", None) or half
    if task.hints.collator == "token_classification":  # pads labels with -100; static rows are full already
        return DataCollatorForTokenClassification(
            tokenizer, pad_to_multiple_of=half if data_args.pad_to_max_length else multiple
        )
    if data_args.pad_to_max_length:
        return default_data_collator
    if task.hints.collator == "multiple_choice":
        return MultipleChoiceCollator(tokenizer, multiple)
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)
