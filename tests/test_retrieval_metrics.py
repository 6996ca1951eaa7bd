"""tasks/retrieval_metrics.py against values worked out by hand (the arithmetic is in the comments)."""

import math
import xml.etree.ElementTree as ET

import pytest

from tasks.retrieval_metrics import (
    beir_ece,
    beir_ece_pairs,
    calibration_bins,
    ece,
    erce,
    erce_pairs,
    openqa_ece,
    reliability_diagram_svg,
    retrieval_scores,
    top_k_accuracy,
)

# --- ranking scores ------------------------------------------------------------------------------------

# q1: grades 2/1/1; ranked d4 (no) d1 (2) d5 (no) d2 (1); d3 never retrieved.
# q2: grades 1/2 plus e3 graded 0 (non-relevant); e1 at rank 1, e3 at 2, 27 fillers, e2 at rank 30.
# q3: one relevant doc, never retrieved.
QRELS = {
    "q1": {"d1": 2, "d2": 1, "d3": 1},
    "q2": {"e1": 1, "e2": 2, "e3": 0},
    "q3": {"f1": 1},
}
RUN = {
    "q1": {"d4": 0.9, "d1": 0.8, "d5": 0.7, "d2": 0.6},
    "q2": {"e1": 100.0, "e3": 99.0, **{f"n{i}": 98.0 - i for i in range(27)}, "e2": 1.0},
    "q3": {"g1": 5.0, "g2": 4.0},
}


def dcg(gains):
    """Σ gain_r / log2(r + 1) over ranks r = 1, 2, ... (trec_eval's nDCG: linear gain, log2 discount)."""
    return sum(g / math.log2(r + 1) for r, g in enumerate(gains, start=1))


def test_retrieval_scores_by_hand():
    # nDCG@10 = DCG of the gains in run order / DCG of the qrels' grades sorted best first
    ndcg_q1 = dcg([0, 2, 0, 1]) / dcg([2, 1, 1])  # (2/log2 3 + 1/log2 5) / (2 + 1/log2 3 + 1/2)
    ndcg_q2 = dcg([1, 0]) / dcg([2, 1])  # e1 alone in the top 10: 1 / (2 + 1/log2 3)
    assert ndcg_q1 == pytest.approx((2 / math.log2(3) + 1 / math.log2(5)) / (2 + 1 / math.log2(3) + 0.5))
    scores = retrieval_scores(QRELS, RUN)
    assert set(scores) == {"ndcg_at_10", "recall_at_20", "recall_at_100", "mrr_at_10"}
    assert scores["ndcg_at_10"] == pytest.approx((ndcg_q1 + ndcg_q2 + 0) / 3)
    # recall: relevant retrieved / relevant (grade > 0): q1 2/3 at both cut-offs, q2 1/2 then 2/2, q3 0
    assert scores["recall_at_20"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert scores["recall_at_100"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # MRR@10: first relevant at rank 2 (q1), 1 (q2), none (q3)
    assert scores["mrr_at_10"] == pytest.approx((1 / 2 + 1 + 0) / 3)


def test_query_missing_from_run_counts_zero_and_run_untouched():
    run = {qid: dict(docs) for qid, docs in RUN.items() if qid != "q2"}
    full, partial = retrieval_scores(QRELS, RUN), retrieval_scores(QRELS, run)
    # q2 now scores 0 on everything, still divided by 3 queries
    assert partial["mrr_at_10"] == pytest.approx((1 / 2) / 3)
    assert partial["ndcg_at_10"] == pytest.approx(full["ndcg_at_10"] - dcg([1]) / dcg([2, 1]) / 3)
    assert retrieval_scores(QRELS, {**run, "q2": {}}) == partial
    with pytest.raises(ValueError):
        retrieval_scores({}, RUN)


def test_identical_ids_dropped_only_when_asked():
    qrels = {"a": {"x": 1}}
    run = {"a": {"a": 9.0, "x": 1.0}}  # the query itself ranked first (ArguAna-style)
    assert retrieval_scores(qrels, run)["mrr_at_10"] == 1.0
    assert retrieval_scores(qrels, run, ignore_identical_ids=False)["mrr_at_10"] == 0.5
    assert run == {"a": {"a": 9.0, "x": 1.0}}


def test_top_k_accuracy():
    hits = [[False, True, False], [False] * 5 + [True], [], [True]]
    # first hits at ranks 2, 6, none, 1
    assert top_k_accuracy(hits, ks=(1, 5, 20)) == {1: 1 / 4, 5: 2 / 4, 20: 3 / 4}
    assert set(top_k_accuracy(hits)) == {1, 5, 20, 100}
    with pytest.raises(ValueError):
        top_k_accuracy([])


# --- calibration ---------------------------------------------------------------------------------------

# 10 examples; 0.1 sits on an inner edge and goes to the bin below (searchsorted, left), 1.0 to the last bin
CONF = [0.1, 0.15, 0.15, 0.3, 0.4, 0.62, 0.68, 0.85, 0.95, 1.0]
CORRECT = [0, 0, 1, 1, 0, 1, 0, 1, 1, 1]


def test_ece_by_hand():
    # bin [0, .1]: {.1→0}            |0 − .1|    × 1/10 = .010
    # bin (.1, .2]: {.15→0, .15→1}   |.5 − .15|  × 2/10 = .070
    # bin (.2, .3]: {.3→1}           |1 − .3|    × 1/10 = .070
    # bin (.3, .4]: {.4→0}           |0 − .4|    × 1/10 = .040
    # bin (.6, .7]: {.62→1, .68→0}   |.5 − .65|  × 2/10 = .030
    # bin (.8, .9]: {.85→1}          |1 − .85|   × 1/10 = .015
    # bin (.9, 1]: {.95→1, 1.0→1}    |1 − .975|  × 2/10 = .005      total .24
    assert ece(CONF, CORRECT) == pytest.approx(0.24)
    bins = calibration_bins(CONF, CORRECT)
    assert [round(b.lower, 1) for b in bins] == [0.0, 0.1, 0.2, 0.3, 0.6, 0.8, 0.9]
    assert [b.count for b in bins] == [1, 2, 1, 1, 2, 1, 2]
    assert [b.accuracy for b in bins] == [0, 0.5, 1, 0, 0.5, 1, 1]
    assert [b.confidence for b in bins] == pytest.approx([0.1, 0.15, 0.3, 0.4, 0.65, 0.85, 0.975])
    assert sum(b.weight for b in bins) == pytest.approx(1.0)
    # 2 bins: [0, .5] holds the first five (acc .4, conf .22), (.5, 1] the rest (acc .8, conf .82)
    assert ece(CONF, CORRECT, n_bins=2) == pytest.approx(0.5 * 0.18 + 0.5 * 0.02)


def test_bins_match_sklearn_calibration_curve():
    # the original's calibration_curve_with_ece is sklearn's calibration_curve plus the weighted sum
    calibration = pytest.importorskip("sklearn.calibration")
    prob_true, prob_pred = calibration.calibration_curve(CORRECT, CONF, n_bins=10)
    bins = calibration_bins(CONF, CORRECT)
    assert [b.accuracy for b in bins] == pytest.approx(list(prob_true))
    assert [b.confidence for b in bins] == pytest.approx(list(prob_pred))


def test_ece_rejects_bad_input():
    for conf, correct in [([], []), ([0.5], [1, 0]), ([1.2], [1]), ([0.5], [2])]:
        with pytest.raises(ValueError):
            ece(conf, correct)


def test_beir_ece_by_hand():
    qrels = {"q1": {"a": 1}, "q2": {"d": 1}, "q3": {"z": 1}}
    run = {
        "q1": {"b": 0.0, "a": math.log(3), "e": -10.0},  # top 2: softmax(ln 3, 0) = (3/4, 1/4)
        "q2": {"c": 0.0, "d": 0.0},  # a tie keeps the run's order: c then d, (1/2, 1/2)
    }  # q3 missing from the run: contributes nothing
    confidences, labels = beir_ece_pairs(qrels, run, n_docs=2)
    assert confidences == pytest.approx([0.75, 0.25, 0.5, 0.5])
    assert labels == [1, 0, 0, 1]
    # bins: .25→0 (|0 − .25| × 1/4), .5/.5→0/1 (0), .75→1 (|1 − .75| × 1/4)
    assert beir_ece(qrels, run, n_docs=2) == pytest.approx(0.125)


def test_openqa_ece_by_hand():
    # first 2 scores per question, already in rank order; the third passage is cut off
    assert openqa_ece([[math.log(3), 0.0, -1.0]], [[True, False, True]], n_docs=2) == pytest.approx(0.25)


def test_erce_by_hand():
    # softmax(a, b) = (π_a, π_b) with π_a − π_b = tanh((a − b) / 2)
    qrels = {"qa": {"p1": 1, "p2": 1}, "qb": {"r1": 1}, "qc": {"s1": 1}, "qe": {"t1": 1}}
    run = {
        # top 3: p1 (pos), x1 (neg), p2 (pos); x2 is outside the top 3
        "qa": {"p1": 2.0, "x1": 1.0, "p2": 0.0, "x2": -5.0},
        # no positive in the top 3: the best-ranked relevant doc anywhere (r1, rank 5) is the positive
        "qb": {"y1": 3.0, "y2": 2.0, "y3": 1.0, "y4": 0.0, "r1": -1.0},
        # nothing relevant retrieved: no pairs
        "qc": {"z1": 1.0, "z2": 0.0},
        # a tie: π_a = π_b, confidence 0, label 0
        "qe": {"t1": 1.0, "u1": 1.0},
    }
    confidences, labels = erce_pairs(qrels, run, n_docs=3)
    t = math.tanh
    assert confidences == pytest.approx([t(0.5), t(0.5), t(2.0), t(1.5), t(1.0), 0.0])
    assert labels == [1, 0, 0, 0, 0, 0]
    # bins: [0, .1] {0→0} contributes 0; (.4, .5] {t(.5)→1, t(.5)→0}: |.5 − t(.5)| × 2/6;
    # (.7, .8] {t(1)→0}: t(1) × 1/6; (.9, 1] {t(2), t(1.5) → 0}: their mean × 2/6
    expected = (2 * abs(0.5 - t(0.5)) + t(1.0) + t(2.0) + t(1.5)) / 6
    assert erce(qrels, run, n_docs=3) == pytest.approx(expected)


def test_erce_default_window_is_20():
    # a positive at rank 21 is not in the window: it becomes the fallback positive against 20 negatives
    qrels = {"q": {"p": 1}}
    run = {"q": {**{f"n{i}": 30.0 - i for i in range(20)}, "p": 0.0}}
    confidences, labels = erce_pairs(qrels, run)
    assert len(confidences) == 20 and labels == [0] * 20


# --- reliability diagram -------------------------------------------------------------------------------


def test_reliability_diagram_svg(tmp_path):
    path = tmp_path / "diagram.svg"
    svg = reliability_diagram_svg(CONF, CORRECT, path, title="toy <run>")
    assert path.read_text(encoding="utf-8") == svg
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(f"{ns}rect") if r.get("class") == "bar"]
    assert len(bars) == len(calibration_bins(CONF, CORRECT)) == 7
    # the (.1, .2] bar: 30 px wide (a tenth of 300), half the plot tall (accuracy .5)
    assert float(bars[1].get("width")) == pytest.approx(30.0)
    assert float(bars[1].get("height")) == pytest.approx(150.0)
    texts = [t.text or "" for t in root.iter(f"{ns}text")]
    assert any("toy <run>" in t and "ECE = 0.240" in t for t in texts)
    assert any(t.startswith("Confidence") for t in texts) and any(t.startswith("Accuracy") for t in texts)
    assert len([ln for ln in root.iter(f"{ns}line") if ln.get("class") == "diagonal"]) == 1
    assert reliability_diagram_svg(CONF, CORRECT, title="toy <run>") == svg  # no path: text only
