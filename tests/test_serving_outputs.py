"""serving/outputs.py: the scores are probabilities over the labels (the last axis), pinned by hand-computed values."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from serving import outputs
from tasks.task_type import TaskType

LOGITS = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])  # (T=2 words, 3 labels)
# the probability of each row's top label: e^2 / (e^2 + 2), e^3 / (e^3 + 2) (= 0.786986, 0.909443)
TOP = [math.exp(2) / (math.exp(2) + 2), math.exp(3) / (math.exp(3) + 2)]


def test_softmax_is_over_the_labels_of_each_row():
    p = outputs.softmax(LOGITS)
    np.testing.assert_allclose(p.max(-1), TOP, rtol=1e-12)
    np.testing.assert_allclose(p.sum(-1), [1.0, 1.0], rtol=1e-12)


def test_token_scores_are_each_words_tag_probability():
    task = SimpleNamespace(task_type=TaskType.TOKEN_CLASSIFICATION, label_list=("O", "B-X", "I-X"))
    scores = outputs.row_scores(task, [LOGITS], {"labels": [[0, 0]]}, {"tokens": [["a", "b"]]}, rows=None)
    assert scores == [[pytest.approx(TOP[0], abs=1e-6), pytest.approx(TOP[1], abs=1e-6)]]


def test_label_scores_of_a_classification_row():
    task = SimpleNamespace(task_type=TaskType.SEQUENCE_CLASSIFICATION, label_list=("a", "b", "c"))
    (scores,) = outputs.row_scores(task, [LOGITS[1]], None, None, rows=None)
    rest = 1 / (math.exp(3) + 2)
    assert scores == pytest.approx({"a": rest, "b": TOP[1], "c": rest}, abs=1e-6)
