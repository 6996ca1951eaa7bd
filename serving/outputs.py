"""From one adapter's per-feature logits to one {"prediction", "scores"} per input record.

The prediction is the task's own: `task.predictions_to_records` (the rows run.py --do_predict writes), its
`task.prediction.key` field. The scores come from the logits by head kind:
  sequence classification  {label name: probability}; regression: null (the prediction is the value)
  multiple choice          [probability of each choice]
  token classification     per word, the probability of its predicted tag (serving/windows.py gives every word its
                           logits, so no word is left without one)
  question answering       the answer's score as the task's post-processing reports it (row "score"), else null
A record the task reads into several raw rows (MultiRC: one per answer option) gets lists, one entry per row, unless
the task's rows already group them per record.
"""

from __future__ import annotations

import numpy as np

from tasks.tagging import IGNORE  # the label of positions without a prediction
from tasks.task_type import TaskType


def softmax(x: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis (the labels): (..., labels) -> (..., labels)."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def padded(rows: list[np.ndarray], fill: float = IGNORE) -> np.ndarray:
    """Per-feature arrays of different lengths (T_i, ...) -> (N, T_max, ...), padded with `fill` as the Trainer does."""
    longest = max(len(r) for r in rows)
    out = np.full((len(rows), longest, *rows[0].shape[1:]), fill, dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def task_predictions(task, logits: list[np.ndarray]):
    """The per-feature logits stacked as the Trainer's predictions for `task.compute_metrics`/records."""
    if task.task_type == TaskType.QUESTION_ANSWERING:
        both = padded(logits)  # (N, T, 2)
        return both[..., 0], both[..., 1]
    if task.task_type == TaskType.TOKEN_CLASSIFICATION:
        return padded(logits)  # (N, T, labels)
    return np.stack(logits)  # (N, labels) or (N, C)


def row_scores(task, logits: list[np.ndarray], features, examples, rows) -> list:
    """Scores of every raw row (see the module docstring); `rows`: the task's predictions_to_records rows."""
    kind = task.task_type
    if kind == TaskType.SEQUENCE_CLASSIFICATION:
        if not task.label_list:
            return [None] * len(logits)
        return [dict(zip(task.label_list, softmax(x).round(6).tolist(), strict=True)) for x in logits]
    if kind == TaskType.MULTIPLE_CHOICE:
        return [softmax(x).round(6).tolist() for x in logits]
    if kind == TaskType.TOKEN_CLASSIFICATION:
        out = []
        for x, labels, words in zip(logits, features["labels"], examples["tokens"], strict=True):
            p = softmax(x).max(-1)  # (T, labels) -> (T,)
            kept = [round(float(p[t]), 6) for t, g in enumerate(labels) if g != IGNORE]
            if len(kept) != len(words):  # serving/windows.py gives each word a position: never a null score
                raise ValueError(f"{len(kept)} tag positions for {len(words)} words.")
            out.append(kept)
        return out
    return [row.get("score") for row in rows]  # question answering: one row per example


def per_record(task, rows: list[dict], scores: list, row_record: list[int], n_records: int) -> list[dict]:
    """One {"prediction", "scores"} per record from the task's rows and the raw rows' scores."""
    key = task.prediction.key
    if len(rows) == n_records and len(row_record) == n_records:  # one raw row per record
        return [{"prediction": r[key], "scores": s} for r, s in zip(rows, scores, strict=True)]
    grouped: list[list] = [[] for _ in range(n_records)]
    for record, s in zip(row_record, scores, strict=True):
        grouped[record].append(s)
    if len(rows) == n_records:  # the task's rows group the raw rows per record (MultiRC: per paragraph)
        return [{"prediction": r[key], "scores": g} for r, g in zip(rows, grouped, strict=True)]
    predictions: list[list] = [[] for _ in range(n_records)]
    for record, r in zip(row_record, rows, strict=True):
        predictions[record].append(r[key])
    return [{"prediction": p, "scores": g} for p, g in zip(predictions, grouped, strict=True)]
