"""Retrieval metrics for PT-Retrieval: BEIR's ranking scores, DPR's top-k answer accuracy, and the
calibration errors of the original's `calibration/` folder (ECE, ERCE) with a reliability diagram as SVG.

Inputs use BEIR's shapes: `qrels` is {query id: {doc id: relevance grade}}, `run` is {query id: {doc id:
score}} (higher = better; the order of the inner dict does not matter except to break ties, see below).
Every score is a fraction in [0, 1] and is not rounded (BEIR rounds to 5 decimals before logging).

    scores = retrieval_scores(qrels, run)        # {"ndcg_at_10", "recall_at_20", "recall_at_100", "mrr_at_10"}
    top_k_accuracy(hits)                         # {1: .., 5: .., 20: .., 100: ..}  (DPR's OpenQA metric)
    ece(confidences, correct)                    # binned ECE, 10 equal-width bins
    beir_ece(qrels, run), erce(qrels, run)       # the paper's ECE / ERCE on a BEIR run
    reliability_diagram_svg(confidences, correct, "plot.svg")

Ties: pytrec_eval (nDCG, recall) orders equal scores by doc id, descending, as trec_eval does; MRR and the
calibration functions order them as Python's stable sort does (the run's insertion order), as BEIR's `mrr`
and the original's `calibration/utils.py` do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytrec_eval

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


# ---------------------------------------------------------------------------------------------------------
# Ranking scores (BEIR, beir/retrieval/evaluation.py `EvaluateRetrieval.evaluate` + custom_metrics.py `mrr`)
# ---------------------------------------------------------------------------------------------------------


def _ranked(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """(doc id, score) by score, best first; ties keep the run's order (a stable sort, as BEIR/the original)."""
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


def retrieval_scores(qrels: Qrels, run: Run, *, ignore_identical_ids: bool = True) -> dict[str, float]:
    """nDCG@10, Recall@20, Recall@100 and MRR@10 of `run` against `qrels`, averaged over every query of `qrels`.

    nDCG and recall come from pytrec_eval (`ndcg_cut.10`, `recall.20,100`), as in BEIR: nDCG's gain is the
    grade itself with a log2(rank + 1) discount, normalised by the ideal ordering of the query's qrels cut at
    10; recall's denominator is the number of docs graded > 0. MRR@10 is BEIR's own: 1 / rank of the first
    doc graded > 0 among the 10 best, 0 if none. A query of `qrels` that the run lacks (or answers with no
    doc) scores 0 on all four. (BEIR divides nDCG/recall by the queries pytrec_eval returns, which leaves a
    missing query out; its dense search returns every query, so the two agree there.)

    `ignore_identical_ids` drops a doc whose id equals its query id (ArguAna, Quora), as BEIR >= 1.0.1's
    evaluate does and as beir 1.0.0's search (the original's) already did; the caller's run is not modified.
    """
    if not qrels:
        raise ValueError("qrels is empty: no query to score")
    ranked: dict[str, dict[str, float]] = {}
    for qid in qrels:
        scores = run.get(qid, {})
        ranked[qid] = {
            pid: float(s) for pid, s in scores.items() if not (ignore_identical_ids and pid == qid)
        }
    evaluator = pytrec_eval.RelevanceEvaluator(
        {qid: {pid: int(g) for pid, g in grades.items()} for qid, grades in qrels.items()},
        {"ndcg_cut.10", "recall.20,100"},
    )
    per_query = evaluator.evaluate({qid: docs for qid, docs in ranked.items() if docs})

    totals = {"ndcg_at_10": 0.0, "recall_at_20": 0.0, "recall_at_100": 0.0, "mrr_at_10": 0.0}
    for qid, grades in qrels.items():
        got = per_query.get(qid, {})
        totals["ndcg_at_10"] += got.get("ndcg_cut_10", 0.0)
        totals["recall_at_20"] += got.get("recall_20", 0.0)
        totals["recall_at_100"] += got.get("recall_100", 0.0)
        relevant = {pid for pid, g in grades.items() if g > 0}
        for rank, (pid, _) in enumerate(_ranked(ranked[qid])[:10], start=1):
            if pid in relevant:
                totals["mrr_at_10"] += 1.0 / rank
                break
    return {name: total / len(qrels) for name, total in totals.items()}


def top_k_accuracy(hits: Sequence[Sequence[bool]], ks: Sequence[int] = (1, 5, 20, 100)) -> dict[int, float]:
    """DPR's OpenQA metric: for each k, the fraction of questions with an answer hit among their k best docs.

    `hits[i]` holds question i's hit flags in rank order (best first; it may be shorter than k). Follows
    `dense_retriever.py` `validate` (`top_k_hits[k-1]`, a question counts from its first hit on).
    """
    if not hits:
        raise ValueError("no questions to score")
    first_hits = [next((rank for rank, hit in enumerate(row) if hit), None) for row in hits]
    return {k: sum(1 for f in first_hits if f is not None and f < k) / len(hits) for k in ks}


# ---------------------------------------------------------------------------------------------------------
# Calibration (PT-Retrieval calibration/utils.py and calibration_ece_openqa.py; spec PT-RETRIEVAL.md §5)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationBin:
    """One non-empty bin of `calibration_bins`: its edges, size, mean label, mean confidence, share of N."""

    lower: float
    upper: float
    count: int
    accuracy: float
    confidence: float
    weight: float


def _softmax(scores: Sequence[float]) -> np.ndarray:
    z = np.asarray(scores, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def calibration_bins(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> list[CalibrationBin]:
    """The non-empty bins of `calibration_curve_with_ece` (`calibration/utils.py:26-71`, strategy "uniform").

    `n_bins` equal-width bins on [0, 1]; a confidence p goes to bin `searchsorted(inner edges, p)` (left
    side), so a p equal to an inner edge falls in the bin below it and 1.0 in the last bin. Each bin reports
    accuracy = mean of `correct`, confidence = mean p, weight = count / N. (The original's own default is
    5 bins; every caller passes 10.)
    """
    conf = np.asarray(confidences, dtype=np.float64).reshape(-1)
    labels = np.asarray(correct).reshape(-1)
    if conf.shape != labels.shape:
        raise ValueError(f"{conf.size} confidences but {labels.size} labels")
    if conf.size == 0:
        raise ValueError("no (confidence, label) pairs to bin")
    if conf.min() < 0 or conf.max() > 1:
        raise ValueError("confidences have values outside [0, 1]")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be binary (bool or 0/1)")
    labels = labels.astype(np.float64)

    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_ids = np.searchsorted(edges[1:-1], conf)  # (N,) in 0..n_bins-1
    sums = np.bincount(bin_ids, weights=conf, minlength=n_bins)
    trues = np.bincount(bin_ids, weights=labels, minlength=n_bins)
    counts = np.bincount(bin_ids, minlength=n_bins)
    return [
        CalibrationBin(
            lower=float(edges[b]),
            upper=float(edges[b + 1]),
            count=int(counts[b]),
            accuracy=float(trues[b] / counts[b]),
            confidence=float(sums[b] / counts[b]),
            weight=float(counts[b] / conf.size),
        )
        for b in range(n_bins)
        if counts[b]
    ]


def ece(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """Expected calibration error: Σ over non-empty bins of (n_b / N) · |accuracy_b − confidence_b|."""
    return float(
        sum(b.weight * abs(b.accuracy - b.confidence) for b in calibration_bins(confidences, correct, n_bins))
    )


def _relevant(grades: Mapping[str, int]) -> set[str]:
    # The original tests the grade's truth (`if v`), not `> 0`: identical for BEIR's 0/1/2 grades.
    return {pid for pid, g in grades.items() if g}


def beir_ece_pairs(qrels: Qrels, run: Run, n_docs: int = 5) -> tuple[list[float], list[int]]:
    """`calculate_ece`'s pairs (`calibration/utils.py`): per query of `qrels`, softmax over its `n_docs` best
    scores; label 1 if that doc is relevant. A query the run lacks contributes nothing (the original fails)."""
    confidences: list[float] = []
    labels: list[int] = []
    for qid, grades in qrels.items():
        rels = _relevant(grades)
        top = _ranked(run.get(qid, {}))[:n_docs]
        if not top:
            continue
        confidences.extend(_softmax([s for _, s in top]).tolist())
        labels.extend(int(pid in rels) for pid, _ in top)
    return confidences, labels


def beir_ece(qrels: Qrels, run: Run, n_docs: int = 5, n_bins: int = 10) -> float:
    """The paper's ECE on BEIR: `ece` of `beir_ece_pairs` (top 5 per query, 10 bins)."""
    return ece(*beir_ece_pairs(qrels, run, n_docs), n_bins=n_bins)


def erce_pairs(qrels: Qrels, run: Run, n_docs: int = 20) -> tuple[list[float], list[int]]:
    """`calculate_erce`'s pairs ("VERSION 1", `calibration/utils.py`), per query of `qrels`:

    positives = relevant docs among the `n_docs` best, negatives = the others among them; with no relevant
    doc there, the best-ranked relevant doc anywhere in the run is the one positive. For every (positive
    score a, negative score b): (π_a, π_b) = softmax(a, b), confidence |π_a − π_b|, label 1 iff π_a > π_b
    (a tie is label 0, confidence 0). A query with no relevant doc retrieved contributes nothing.
    """
    confidences: list[float] = []
    labels: list[int] = []
    for qid, grades in qrels.items():
        rels = _relevant(grades)
        ranked = _ranked(run.get(qid, {}))
        positives = [s for pid, s in ranked[:n_docs] if pid in rels]
        negatives = [s for pid, s in ranked[:n_docs] if pid not in rels]
        if not positives:
            positives = [s for pid, s in ranked if pid in rels][:1]
        for a in positives:
            for b in negatives:
                pi_a, pi_b = _softmax([a, b])
                confidences.append(float(abs(pi_a - pi_b)))
                labels.append(int(pi_a - pi_b > 0))
    return confidences, labels


def erce(qrels: Qrels, run: Run, n_docs: int = 20, n_bins: int = 10) -> float:
    """Expected ranking calibration error: `ece` of `erce_pairs` (top 20 per query, 10 bins)."""
    return ece(*erce_pairs(qrels, run, n_docs), n_bins=n_bins)


def openqa_ece(
    scores: Sequence[Sequence[float]], hits: Sequence[Sequence[bool]], n_docs: int = 5, n_bins: int = 10
) -> float:
    """`calibration_ece_openqa.py` `calculate_ece`: per question, softmax over its first `n_docs` scores
    (rank order, as the index returns them), label = answer hit; `ece` over all (question, passage) pairs."""
    confidences: list[float] = []
    labels: list[int] = []
    for row_scores, row_hits in zip(scores, hits, strict=True):
        top = list(row_scores[:n_docs])
        if top:
            confidences.extend(_softmax(top).tolist())
            labels.extend(int(h) for h in row_hits[: len(top)])
    return ece(confidences, labels, n_bins=n_bins)


# ---------------------------------------------------------------------------------------------------------
# Reliability diagram (the original draws sklearn's CalibrationDisplay with matplotlib; this is a plain SVG)
# ---------------------------------------------------------------------------------------------------------


def reliability_diagram_svg(
    confidences: Sequence[float],
    correct: Sequence[bool],
    path: str | Path | None = None,
    *,
    n_bins: int = 10,
    title: str = "Reliability diagram",
) -> str:
    """A reliability diagram as SVG text (written to `path` when given): one bar per non-empty bin, spanning
    the bin's edges, as tall as its accuracy; the y = x diagonal of perfect calibration; axis labels, ticks,
    and the ECE in the title. Bars carry `class="bar"` and a `<title>` with the bin's numbers."""
    bins = calibration_bins(confidences, correct, n_bins)
    error = sum(b.weight * abs(b.accuracy - b.confidence) for b in bins)
    size, left, top = 300, 60, 40  # plot square side, left and top margins (px)
    width, height = left + size + 20, top + size + 50

    def x(v: float) -> float:
        return left + v * size

    def y(v: float) -> float:
        return top + (1 - v) * size

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">'
        f"{escape(title)} (ECE = {error:.3f}, N = {sum(b.count for b in bins)})</text>",
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="black"/>',
    ]
    for b in bins:
        parts.append(
            f'<rect class="bar" x="{x(b.lower):.2f}" y="{y(b.accuracy):.2f}" '
            f'width="{(b.upper - b.lower) * size:.2f}" height="{b.accuracy * size:.2f}" '
            f'fill="#4c78a8" fill-opacity="0.8" stroke="white">'
            f"<title>[{b.lower:.2f}, {b.upper:.2f}]: n = {b.count}, accuracy = {b.accuracy:.3f}, "
            f"confidence = {b.confidence:.3f}</title></rect>"
        )
    parts.append(
        f'<line class="diagonal" x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" '
        f'stroke="gray" stroke-dasharray="4 3"/>'
    )
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="{x(v)}" y="{top + size + 16}" text-anchor="middle">{v:g}</text>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4}" text-anchor="end">{v:g}</text>')
    parts.append(
        f'<text x="{x(0.5)}" y="{top + size + 38}" text-anchor="middle">Confidence (mean predicted probability)</text>'
    )
    parts.append(
        f'<text x="16" y="{y(0.5)}" text-anchor="middle" transform="rotate(-90 16 {y(0.5)})">'
        f"Accuracy (fraction correct)</text>"
    )
    parts.append("</svg>")
    svg = "\n".join(parts) + "\n"
    if path is not None:
        Path(path).write_text(svg, encoding="utf-8")
    return svg
