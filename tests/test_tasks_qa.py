"""QA tasks: official SQuAD JSON fixtures -> load -> windows -> post-processing -> SQuAD v1.1/v2.0 scores."""

import json
import os

import datasets
import numpy as np
import pytest

from arguments import DataTrainingArguments
from tasks import qa
from tasks.qa import QuestionAnsweringArguments
from tasks.qa_postprocess import postprocess_predictions, squad_scores
from tasks.registry import DataError
from tasks.squad_metrics import exact_match_score, f1_score, normalize_answer
from tiny import bert_tokenizer, roberta_tokenizer

CONTEXT = "Paris is the capital and largest city of France. The quick brown fox jumps over the lazy dog."
FOX = CONTEXT.index("The quick")


def squad_json(version_2=False):
    qas = [
        {
            "id": "q1",
            "question": "  What is the capital of France?",
            "answers": [{"text": "Paris", "answer_start": 0}],
        },
        {
            "id": "q2",
            "question": "Who jumps?",
            "answers": [
                {"text": "The quick brown fox", "answer_start": FOX},
                {"text": "brown fox", "answer_start": FOX + 10},
            ],
        },
    ]
    if version_2:
        qas.append(
            {"id": "q3", "question": "What is the capital of Peru?", "answers": [], "is_impossible": True}
        )
    article = {"title": "France", "paragraphs": [{"context": CONTEXT, "qas": qas}]}
    return {"version": "v2.0" if version_2 else "1.1", "data": [article]}


def write(path, payload):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(payload if isinstance(payload, str) else json.dumps(payload, indent=1))


def data_args(path=None, name="squad", **kw):
    kw = {"max_seq_length": 24, "doc_stride": 8, "pad_to_max_length": False, **kw}
    return DataTrainingArguments(
        task_name="qa", dataset_name=name, data_dir=str(path) if path else None, **kw
    )


@pytest.fixture
def squad_dir(tmp_path):
    write(str(tmp_path / "SQuAD" / "train-v1.1.json"), squad_json())
    write(str(tmp_path / "SQuAD" / "dev-v1.1.json"), squad_json())
    write(str(tmp_path / "squad" / "dev-v2.0.json"), squad_json(version_2=True))
    return tmp_path


def to_features(task, ds, tokenizer, args):
    return ds.map(lambda b: task.preprocess(b, tokenizer, args), batched=True, remove_columns=ds.column_names)


def peaked_logits(features, override=None):
    """(start, end) logits = 1 at each feature's gold start/end position, 0 elsewhere (padded with -100)."""
    width = max(len(r) for r in features["input_ids"])
    start, end = np.full((len(features), width), -100.0), np.full((len(features), width), -100.0)
    for i, row in enumerate(features):
        n = len(row["input_ids"])
        start[i, :n], end[i, :n] = 0.0, 0.0
        s, e = (override or {}).get(i, (row["start_positions"], row["end_positions"]))
        start[i, s] += 1.0
        end[i, e] += 1.0
    return start, end


def test_registered_rows():
    for name in ("squad", "squad_v2"):
        task = qa.TASKS[name]
        assert (task.family, task.main_metric, task.hints.schedule, task.label_list) == (
            "qa",
            "f1",
            "exponential",
            None,
        )
    assert (
        qa.TASKS["squad"].hub_id == "rajpurkar/squad" and qa.TASKS["squad_v2"].hub_id == "rajpurkar/squad_v2"
    )


def test_load_flattens_the_official_json(squad_dir):
    raw = qa.TASKS["squad"].load(data_args(squad_dir), ["train", "validation"])
    dev = raw["validation"]
    assert dev.column_names == ["id", "title", "context", "question", "answers"] and len(dev) == 2
    assert dev[1]["answers"] == {
        "text": ["The quick brown fox", "brown fox"],
        "answer_start": [FOX, FOX + 10],
    }
    v2 = qa.TASKS["squad_v2"].load(data_args(squad_dir, "squad_v2"), ["validation"])["validation"]
    assert v2[2]["id"] == "q3" and v2[2]["answers"] == {"text": [], "answer_start": []}


def test_bad_json_missing_field_missing_file_and_test_split(tmp_path):
    task = qa.TASKS["squad"]
    write(str(tmp_path / "bad" / "dev-v1.1.json"), '{"data": [\n{"title": "x",\n oops}]}')
    with pytest.raises(DataError, match=r"dev-v1\.1\.json:3: not valid JSON"):
        task.load(data_args(tmp_path / "bad"), ["validation"])
    broken = squad_json()
    del broken["data"][0]["paragraphs"][0]["qas"][1]["question"]
    write(str(tmp_path / "miss" / "dev-v1.1.json"), broken)
    with pytest.raises(
        DataError, match=r"data\[0\]\.paragraphs\[0\]\.qas\[1\]: missing or bad field 'question'"
    ):
        task.load(data_args(tmp_path / "miss"), ["validation"])
    with pytest.raises(DataError, match=r"SQuAD/train-v1\.1\.json"):
        task.load(data_args(tmp_path), ["train"])
    with pytest.raises(DataError, match="no public test split"):
        task.load(data_args(tmp_path), ["test"])


def test_hub_fallback(monkeypatch):
    calls = []

    def fake_load_dataset(path, name=None, split=None, **kw):
        calls.append((path, split))
        row = {
            "id": "a",
            "title": "t",
            "context": "c",
            "question": "q",
            "answers": {"text": [], "answer_start": []},
        }
        return datasets.Dataset.from_list([row])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    raw = qa.TASKS["squad_v2"].load(data_args(name="squad_v2"), ["train", "validation"])
    assert (
        calls == [("rajpurkar/squad_v2", "train"), ("rajpurkar/squad_v2", "validation")]
        and len(raw["validation"]) == 1
    )


@pytest.mark.parametrize("tokenizer", [bert_tokenizer, roberta_tokenizer])
def test_windows_locate_the_answer_or_point_at_cls(squad_dir, tokenizer):
    task, args, tok = qa.TASKS["squad"], data_args(squad_dir), tokenizer()
    raw = task.load(args, ["validation"])["validation"]
    feats = to_features(task, raw, tok, args)
    assert {
        "input_ids",
        "attention_mask",
        "start_positions",
        "end_positions",
        "example_id",
        "offset_mapping",
    } <= set(feats.column_names)
    assert len(feats) > len(raw)  # the 95-character context needs several 24-token windows
    found = {"q1": 0, "q2": 0}
    for row in feats:
        assert len(row["input_ids"]) <= 24
        s, e = row["start_positions"], row["end_positions"]
        offsets = row["offset_mapping"]
        assert offsets[0] is None  # CLS / question tokens have no context offset
        if s == 0:
            assert e == 0
            continue
        gold = {"q1": "Paris", "q2": "The quick brown fox"}[row["example_id"]]
        assert CONTEXT[offsets[s][0] : offsets[e][1]] == gold
        found[row["example_id"]] += 1
    assert found["q1"] >= 1 and found["q2"] >= 1


def test_needs_fast_tokenizer(squad_dir):
    class Slow:
        is_fast = False

    with pytest.raises(ValueError, match="fast tokenizer"):
        qa.TASKS["squad"].preprocess({"question": ["q"], "context": ["c"]}, Slow(), data_args(squad_dir))


def test_squad_normalisation_by_hand():
    assert (
        normalize_answer("The  Quick, Brown fox!") == "quick brown fox"
    )  # case, punctuation, article, spaces
    assert normalize_answer("An apple a day") == "apple day"
    assert exact_match_score("an Apple.", "apple") == 1.0
    assert f1_score("the quick fox", "quick brown fox") == pytest.approx(0.8)  # p = 2/2, r = 2/3


def test_squad_scores_by_hand():
    examples = [
        {"id": "q1", "answers": {"text": ["Paris"], "answer_start": [0]}},
        {"id": "q2", "answers": {"text": ["The quick brown fox", "brown fox"], "answer_start": [0, 10]}},
    ]
    # q1 exact; q2 "quick fox": EM 0, F1 max(0.8 vs "quick brown fox", 0.5 vs "brown fox")
    assert squad_scores({"q1": "Paris!", "q2": "quick fox"}, examples, version_2=False) == pytest.approx(
        {"exact_match": 50.0, "f1": 90.0}
    )
    v2 = examples + [{"id": "q3", "answers": {"text": [], "answer_start": []}}]
    scores = squad_scores({"q1": "Paris", "q2": "", "q3": ""}, v2, version_2=True)
    has_ans = {"HasAns_exact": 50.0, "HasAns_f1": 50.0, "HasAns_total": 2}
    no_ans = {"NoAns_exact": 100.0, "NoAns_f1": 100.0, "NoAns_total": 1}
    assert scores == pytest.approx({"exact_match": 200 / 3, "f1": 200 / 3, **has_ans, **no_ans})


# Hand-made windows over "Paris is the capital of France." for one example:
# window A = [CLS] q Paris is the [SEP], window B = [CLS] q capital of France . [SEP]
HAND_CONTEXT = "Paris is the capital of France."
HAND_FEATURES = {
    "example_id": ["x", "x"],
    "offset_mapping": [
        [None, None, (0, 5), (6, 8), (9, 12), None, None],
        [None, None, (13, 20), (21, 23), (24, 30), (30, 31), None],
    ],
}
HAND_EXAMPLES = [{"id": "x", "context": HAND_CONTEXT}]


def hand_logits(cls_a=1.0, cls_b=0.0):
    start = np.array([[cls_a, 0, 2, 0, 0, 0, 0], [cls_b, 0, 0, 0, 3, 0, 9]], dtype=float)
    end = np.array([[cls_a, 0, 2, 0, 0, 0, 0], [cls_b, 0, 5, 0, 3, 0, 9]], dtype=float)
    return start, end


def test_postprocess_picks_the_best_valid_span_across_windows():
    start, end = hand_logits()
    # candidates: A "Paris" 2+2=4; B "France" 3+3=6, "capital" 0+5=5, (4 -> 2) ends before it starts,
    # the 9s sit on a [SEP] (no offset): France wins
    scores = {}
    assert postprocess_predictions(HAND_EXAMPLES, HAND_FEATURES, start, end, scores=scores) == {"x": "France"}
    assert scores == {"x": 6.0}  # France's start + end logit
    # a 3-token span "capital of France" (start 2 raised to 10) beats France unless max_answer_length < 3
    start[1, 2], end[1, 4] = 10.0, 8.0  # "capital of France" 18 > "capital" 15 > "France" 11
    assert postprocess_predictions(HAND_EXAMPLES, HAND_FEATURES, start, end) == {"x": "capital of France"}
    limited = postprocess_predictions(HAND_EXAMPLES, HAND_FEATURES, start, end, max_answer_length=2)
    assert limited == {"x": "capital"}


def test_postprocess_null_answer_only_with_version_2():
    start, end = hand_logits(cls_a=5.0, cls_b=4.0)  # null scores 10 and 8 -> min 8; best span 6; diff 2
    assert postprocess_predictions(HAND_EXAMPLES, HAND_FEATURES, start, end) == {"x": "France"}
    v2 = {"version_2_with_negative": True}
    scores = {}
    assert postprocess_predictions(HAND_EXAMPLES, HAND_FEATURES, start, end, scores=scores, **v2) == {"x": ""}
    assert scores == {"x": 8.0}  # no answer: the lowest window null score
    lenient = postprocess_predictions(
        HAND_EXAMPLES, HAND_FEATURES, start, end, null_score_diff_threshold=2.5, **v2
    )
    assert lenient == {"x": "France"}


@pytest.mark.parametrize("tokenizer", [bert_tokenizer, roberta_tokenizer])
def test_compute_metrics_end_to_end(squad_dir, tokenizer):
    task, args, tok = qa.TASKS["squad_v2"], data_args(squad_dir, "squad_v2"), tokenizer()
    raw = task.load(args, ["validation"])["validation"]
    feats = to_features(task, raw, tok, args)
    perfect = peaked_logits(feats)
    has_ans = {"HasAns_exact": 100.0, "HasAns_f1": 100.0, "HasAns_total": 2}
    no_ans = {"NoAns_exact": 100.0, "NoAns_f1": 100.0, "NoAns_total": 1}
    expected = {"exact_match": 100.0, "f1": 100.0, **has_ans, **no_ans}
    assert task.compute_metrics(perfect, feats, raw, args) == pytest.approx(expected)
    records = task.predictions_to_records(perfect, feats, raw, args)
    texts = {"q1": "Paris", "q2": "The quick brown fox", "q3": ""}
    # every answer (and q3's null answer, its gold [CLS]) has start + end logit 1 + 1
    assert records == [{"id": qid, "prediction_text": text, "score": 2.0} for qid, text in texts.items()]
    # give q3's first window a weak "Paris" span (1.0 < null 2.0): a lenient threshold then answers it wrongly
    first = feats["example_id"].index("q3")
    offsets = feats[first]["offset_mapping"]
    p_start = next(k for k, o in enumerate(offsets) if o is not None and o[0] == 0)
    p_end = next(
        k for k, o in enumerate(offsets) if o is not None and o[1] == len("Paris")
    )  # RoBERTa: "ĠP" "aris"
    perfect[0][first, p_start] = perfect[1][first, p_end] = 0.5
    assert task.compute_metrics(perfect, feats, raw, args)["NoAns_exact"] == 100.0
    lenient = QuestionAnsweringArguments(null_score_diff_threshold=100.0)
    assert (
        task.predictions_to_records(perfect, feats, raw, args, task_args=lenient)[2]["prediction_text"]
        == "Paris"
    )
    scores = task.compute_metrics(perfect, feats, raw, args, task_args=lenient)
    assert scores["NoAns_exact"] == 0.0 and scores["HasAns_exact"] == 100.0
    assert scores["exact_match"] == pytest.approx(200 / 3)


def test_squad_v1_metrics_keys(squad_dir):
    task, args = qa.TASKS["squad"], data_args(squad_dir)
    raw = task.load(args, ["validation"])["validation"]
    feats = to_features(task, raw, bert_tokenizer(), args)
    assert task.compute_metrics(peaked_logits(feats), feats, raw, args) == {"exact_match": 100.0, "f1": 100.0}
