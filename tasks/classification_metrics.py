"""Classification and regression scores shared by the SuperGLUE and GLUE tasks, in numpy.

Each function takes predictions and gold labels as array-likes of the same length and returns a plain
float. The definitions are the textbook ones that sklearn/scipy (and so the Hub `glue`/`super_glue` metrics
the original loaded with `load_metric`) implement: macro-F1 averages over the classes seen in gold or
prediction, a score whose denominator is 0 is 0.0 (sklearn's convention), and Spearman ranks ties by their
average rank.
"""

from __future__ import annotations

import numpy as np


def _pair(predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    preds, gold = np.asarray(predictions), np.asarray(labels)
    if preds.shape != gold.shape:
        raise ValueError(f"predictions {preds.shape} and labels {gold.shape} differ in shape")
    if preds.size == 0:
        raise ValueError("no predictions to score")
    return preds, gold


def accuracy(predictions, labels) -> float:
    preds, gold = _pair(predictions, labels)
    return float((preds == gold).mean())


def f1_binary(predictions, labels, positive=1) -> float:
    """F1 of the `positive` class: 2·TP / (2·TP + FP + FN); 0.0 when there is no positive anywhere."""
    preds, gold = _pair(predictions, labels)
    tp = np.sum((preds == positive) & (gold == positive))
    fp = np.sum((preds == positive) & (gold != positive))
    fn = np.sum((preds != positive) & (gold == positive))
    denom = 2 * tp + fp + fn
    return float(2 * tp / denom) if denom else 0.0


def f1_macro(predictions, labels) -> float:
    """Unweighted mean of the per-class F1 over every class found in the gold labels or the predictions."""
    preds, gold = _pair(predictions, labels)
    classes = np.union1d(preds, gold)
    return float(np.mean([f1_binary(preds, gold, positive=c) for c in classes]))


def matthews_corrcoef(predictions, labels) -> float:
    """Matthews correlation (the multi-class R_K form, equal to the phi coefficient for two classes)."""
    preds, gold = _pair(predictions, labels)
    classes = np.union1d(preds, gold)
    # confusion[i, j]: gold class i predicted as class j
    confusion = np.array(
        [[np.sum((gold == a) & (preds == b)) for b in classes] for a in classes], dtype=np.float64
    )
    n = confusion.sum()
    correct = np.trace(confusion)
    gold_totals, pred_totals = confusion.sum(axis=1), confusion.sum(axis=0)
    cov_yp = correct * n - gold_totals @ pred_totals
    cov_yy = n * n - gold_totals @ gold_totals
    cov_pp = n * n - pred_totals @ pred_totals
    denom = np.sqrt(cov_yy * cov_pp)
    return float(cov_yp / denom) if denom else 0.0


def pearson(predictions, labels) -> float:
    x, y = (a.astype(np.float64) for a in _pair(predictions, labels))
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom else 0.0


def rank_average(values) -> np.ndarray:
    """1-based ranks; tied values all get the mean of the ranks they span (scipy's rankdata 'average')."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2  # mean of ranks start+1 .. end
            start = end
    return ranks


def spearman(predictions, labels) -> float:
    """Pearson correlation of the average ranks."""
    preds, gold = _pair(predictions, labels)
    return pearson(rank_average(preds), rank_average(gold))
