"""SQuAD answer normalisation and scores (the official v1.1/v2.0 evaluation scripts' definitions), shared by
QA and ReCoRD. Written from the published definition; no Hub metric is needed."""

from __future__ import annotations

import collections
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation, articles (a/an/the) and extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-overlap F1 of the normalised strings. Two empty answers (SQuAD 2.0 no-answer) score 1."""
    pred, gold = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    if not pred or not gold:
        return float(pred == gold)
    common = collections.Counter(pred) & collections.Counter(gold)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def metric_max_over_ground_truths(metric, prediction: str, ground_truths) -> float:
    """Best score over the gold answers; an example with no gold answer is scored against the empty string."""
    return max((metric(prediction, gt) for gt in ground_truths), default=metric(prediction, ""))
