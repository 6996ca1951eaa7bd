"""SQuAD post-processing (window logits -> answer text per example) and the official v1.1 / v2.0 scores.

postprocess_predictions(examples, features, start_logits, end_logits, ...) -> {example id: answer text}
    examples: columns "id", "context"; features: "example_id", "offset_mapping" (None outside the context),
    one row per window in the order of the logits; start_logits / end_logits: (num_features, T) arrays (the
    Trainer may pad T with -100). For each example, every window's n_best_size best start and end positions
    are paired; spans that end before they start, run past max_answer_length tokens or touch a non-context
    token are dropped; the best start+end logit sum wins and its offsets are cut from the context. With
    version_2_with_negative the null answer "" is predicted when (lowest null score over the windows: the
    start+end logits at position 0, the CLS token) - (best span score) > null_score_diff_threshold.
    Follows the original tasks/qa/utils_qa.py (= HF run_qa's postprocess_qa_predictions); unlike it, an
    example with no valid span predicts "" (not "empty").
squad_scores(predictions, examples, version_2) -> metrics in percent (0-100) as the official scripts print.
"""

from __future__ import annotations

import collections

import numpy as np

from tasks.io import column
from tasks.squad_metrics import exact_match_score, f1_score, metric_max_over_ground_truths, normalize_answer


def _best_span(start, end, offsets, n_best_size: int, max_answer_length: int):
    """(score, char_start, char_end) of the best valid span of one window, or None."""
    length = len(offsets)
    start, end = np.asarray(start)[:length], np.asarray(end)[:length]
    starts = np.argsort(start)[::-1][:n_best_size]
    ends = np.argsort(end)[::-1][:n_best_size]
    best = None
    for s in starts:
        for e in ends:
            if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                continue
            score = float(start[s] + end[e])
            if best is None or score > best[0]:
                best = (score, offsets[s][0], offsets[e][1])
    return best


def postprocess_predictions(
    examples,
    features,
    start_logits,
    end_logits,
    *,
    version_2_with_negative: bool = False,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
    scores: dict | None = None,
) -> dict[str, str]:
    ids, contexts = column(examples, "id"), column(examples, "context")
    feature_ids, offsets = column(features, "example_id"), column(features, "offset_mapping")
    if len(start_logits) != len(feature_ids) or len(end_logits) != len(feature_ids):
        raise ValueError(
            f"{len(start_logits)} start / {len(end_logits)} end logit rows for {len(feature_ids)} features."
        )
    windows = collections.defaultdict(list)
    for i, example_id in enumerate(feature_ids):
        windows[example_id].append(i)

    answers = {}
    for example_id, context in zip(ids, contexts, strict=True):
        best, null_score = None, None
        for i in windows.get(example_id, []):
            span = _best_span(start_logits[i], end_logits[i], offsets[i], n_best_size, max_answer_length)
            if span is not None and (best is None or span[0] > best[0]):
                best = span
            window_null = float(start_logits[i][0] + end_logits[i][0])
            null_score = window_null if null_score is None else min(null_score, window_null)
        if best is None:
            answers[example_id], score = "", null_score
        elif version_2_with_negative and null_score - best[0] > null_score_diff_threshold:
            answers[example_id], score = "", null_score
        else:
            answers[example_id], score = context[best[1] : best[2]], best[0]
        if scores is not None:  # start + end logit of the answer (of the null answer when there is none)
            scores[example_id] = score
    return answers


def squad_scores(predictions: dict[str, str], examples, version_2: bool) -> dict[str, float]:
    """exact_match and f1 over `examples` ("id", "answers": {"text": [...]}); v2 adds HasAns_/NoAns_ parts
    (a group with no question is left out, as in the official evaluate-v2.0.py)."""
    ids, answers = column(examples, "id"), column(examples, "answers")
    exact, f1, has_answer = [], [], []
    for qid, gold in zip(ids, answers, strict=True):
        pred = predictions.get(qid, "")
        texts = list(gold["text"])
        if version_2:
            # evaluate-v2.0.py: gold answers that normalise to "" are dropped; none left = the no-answer "".
            texts = [t for t in texts if normalize_answer(t)] or [""]
        exact.append(metric_max_over_ground_truths(exact_match_score, pred, texts))
        f1.append(metric_max_over_ground_truths(f1_score, pred, texts))
        has_answer.append(bool(gold["text"]))

    def pct(values):
        return 100.0 * float(np.mean(values)) if values else 0.0

    scores = {"exact_match": pct(exact), "f1": pct(f1)}
    if version_2:
        for name, keep in (("HasAns", True), ("NoAns", False)):
            idx = [k for k, h in enumerate(has_answer) if h == keep]
            if idx:
                scores[f"{name}_exact"] = pct([exact[k] for k in idx])
                scores[f"{name}_f1"] = pct([f1[k] for k in idx])
                scores[f"{name}_total"] = float(len(idx))
    return scores
