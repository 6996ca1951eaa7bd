"""Length-grouped evaluation: score a split in order of length, hand back predictions in input order.

The stock loader pads each evaluation batch to its longest member in input order; on CoNLL-2003 dev (sentences of
1–124 tokens) most of every batch is padding. Sorted longest first, neighbours have about the same length, so the
padded batches are small; with attention masks each example's logits do not depend on its batch-mates, so the
predictions are the same and only their order must be undone before any metric or file sees them.

`token_loss` gives tagging tasks an evaluation loss that does not depend on how examples are grouped: the mean
cross-entropy over every labelled token of the split (the stock loop averages per-batch means instead).
"""

from __future__ import annotations

import datasets
import numpy as np

_ORDER_CACHE: dict[str, np.ndarray] = {}


def _length(input_ids) -> int:
    """Tokens of one feature: (T,) -> T; multiple choice (C, T_c) -> the longest choice."""
    if input_ids and isinstance(input_ids[0], list):
        return max(len(choice) for choice in input_ids)
    return len(input_ids)


def length_order(features: datasets.Dataset) -> np.ndarray:
    """Indices of `features` from longest to shortest (stable: equal lengths keep input order). Cached per split."""
    key = features._fingerprint
    if key not in _ORDER_CACHE:
        lengths = np.array([_length(ids) for ids in features["input_ids"]], dtype=np.int64)
        _ORDER_CACHE[key] = np.argsort(-lengths, kind="stable")
    return _ORDER_CACHE[key]


def restore_order(array, order: np.ndarray):
    """Undo `features.select(order)` on model outputs: row k of `array` belongs to input row order[k].

    Works on one array (N, ...) or a tuple/list of them (QA start and end logits)."""
    if array is None:
        return None
    if isinstance(array, (tuple, list)):
        return type(array)(restore_order(a, order) for a in array)
    restored = np.empty_like(array)
    restored[order] = array
    return restored


def token_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy over labelled tokens (label != -100). logits (N, T, C), labels (N, T)."""
    mask = labels != -100  # (N, T)
    picked = logits[mask].astype(np.float64)  # (M, C)
    shifted = picked - picked.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # (M, C)
    return float(-log_probs[np.arange(len(picked)), labels[mask]].mean()) if len(picked) else float("nan")
