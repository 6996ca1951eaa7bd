"""tasks/classification_metrics.py against values worked out by hand (the arithmetic is in the comments)."""

import math

import numpy as np
import pytest

from tasks.classification_metrics import (
    accuracy,
    f1_binary,
    f1_macro,
    matthews_corrcoef,
    pearson,
    rank_average,
    spearman,
)


def test_accuracy():
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75


def test_binary_f1():
    # TP = 2 (positions 0, 3), FP = 1 (position 1), FN = 1 (position 4): 2·2 / (2·2 + 1 + 1)
    assert f1_binary([1, 1, 0, 1, 0], [1, 0, 0, 1, 1]) == pytest.approx(4 / 6)
    assert f1_binary([0, 0], [0, 0]) == 0.0  # no positive anywhere: sklearn's zero_division=0


def test_macro_f1_three_classes():
    gold, preds = [0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2]
    # class 0: TP 2 FP 0 FN 1 -> 4/5; class 1: TP 1 FP 1 FN 1 -> 2/4; class 2: TP 1 FP 1 FN 0 -> 2/3
    assert f1_macro(preds, gold) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_macro_f1_counts_a_class_seen_only_in_predictions():
    # class 0: TP 1 FN 1 -> 2/3; class 1 (predicted, never gold): F1 0
    assert f1_macro([0, 1], [0, 0]) == pytest.approx(1 / 3)


def test_matthews_binary_by_hand():
    # TP 2, TN 1, FP 1, FN 1: (2·1 − 1·1) / sqrt(3·3·2·2) = 1/6
    assert matthews_corrcoef([1, 1, 0, 0, 1], [1, 1, 1, 0, 0]) == pytest.approx(1 / 6)


def test_matthews_edge_cases():
    assert matthews_corrcoef([2, 0, 1, 1], [2, 0, 1, 1]) == pytest.approx(1.0)
    assert matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    assert matthews_corrcoef([1, 1, 1, 1], [1, 0, 1, 0]) == 0.0  # constant prediction: 0, not nan


def test_pearson_by_hand():
    # deviations x: -1.5 -.5 .5 1.5, y: -3 -1 0 4 -> 11 / sqrt(5 · 26)
    assert pearson([1, 2, 3, 4], [2, 4, 5, 9]) == pytest.approx(11 / math.sqrt(130))


def test_spearman_averages_tied_ranks():
    assert rank_average([1, 2, 2, 3]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert rank_average([3.0, 1.0, 3.0, 3.0]).tolist() == [3.0, 1.0, 3.0, 3.0]
    # ranks x: 1 2.5 2.5 4, y: 1 3 2 4 -> deviations -1.5 0 0 1.5 / -1.5 .5 -.5 1.5 -> 4.5 / sqrt(4.5 · 5)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))


def test_shape_mismatch_and_empty_are_errors():
    with pytest.raises(ValueError, match="shape"):
        accuracy(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="no predictions"):
        accuracy([], [])
