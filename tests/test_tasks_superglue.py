"""SuperGLUE tasks: official-format fixtures written here, loaded with Task.load and mapped with Task.preprocess
the way run.py does (batched datasets.map, raw columns removed); bad files; the Hub path with a stubbed loader;
metrics and leaderboard rows against hand-computed values; counts of the real files in ../shared/data."""

import json
import os

import datasets
import numpy as np
import pytest

from arguments import DataTrainingArguments
from model.utils import TaskType
from tasks.registry import DataError
from tasks.superglue import SPECS, TASKS
from tasks.superglue_data import LAYOUT
from tests.fixtures import needs_real
from tests.tiny import bert_tokenizer, roberta_tokenizer

REAL = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "superglue"
)
MODEL_KEYS = {"input_ids", "token_type_ids", "attention_mask", "labels"}


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def args(name, data_dir, **kw):
    kw.setdefault("max_seq_length", 64)
    return DataTrainingArguments(task_name="superglue", dataset_name=name, data_dir=str(data_dir), **kw)


def featurize(name, raw, data_args):
    """What run.py does with a split."""
    return raw.map(
        TASKS[name].preprocess,
        batched=True,
        remove_columns=raw.column_names,
        fn_kwargs={"tokenizer": bert_tokenizer(), "data_args": data_args},
    )


def decode(ids):
    return bert_tokenizer().decode(ids, skip_special_tokens=False).replace(" [PAD]", "")


def load_one(name, tmp_path, folder, rows, split="validation", **kw):
    write_jsonl(
        tmp_path / "SuperGLUE" / folder / {"validation": "val.jsonl"}.get(split, f"{split}.jsonl"), rows
    )
    data_args = args(name, tmp_path / "SuperGLUE", **kw)
    raw = TASKS[name].load(data_args, [split])[split]
    return raw, featurize(name, raw, data_args), data_args


# ------------------------------------------------------------------------------------------------------------
# Loading + preprocessing, one dataset at a time
# ------------------------------------------------------------------------------------------------------------

RTE_ROWS = [
    {"premise": "The cat sat.", "hypothesis": "A dog ran.", "label": "not_entailment", "idx": 0},
    {"premise": "Dana Reeve died.", "hypothesis": "Reeve is dead.", "label": "entailment", "idx": 1},
]


def test_rte_pair_encoding_exact_ids(tmp_path):
    raw, feats, _ = load_one("rte", tmp_path, "RTE", RTE_ROWS, max_seq_length=16)
    assert raw.column_names == ["premise", "hypothesis", "idx", "label"]
    assert raw["label"] == [1, 0]  # label_list ("entailment", "not_entailment"), the Hub's order
    assert set(feats.column_names) == MODEL_KEYS
    assert feats[0]["input_ids"] == [101, 1996, 4937, 2938, 1012, 102, 1037, 3899, 2743, 1012, 102] + [0] * 5
    assert feats[0]["token_type_ids"] == [0] * 6 + [1] * 5 + [0] * 5
    assert feats[0]["attention_mask"] == [1] * 11 + [0] * 5
    assert feats["labels"] == [1, 0]
    assert (
        TASKS["rte"].label_list == ("entailment", "not_entailment") and TASKS["rte"].main_metric == "accuracy"
    )


def test_task_folder_as_data_dir_and_explicit_file(tmp_path):
    write_jsonl(tmp_path / "RTE" / "train.jsonl", RTE_ROWS)
    assert len(TASKS["rte"].load(args("rte", tmp_path / "RTE"), ["train"])["train"]) == 2
    explicit = DataTrainingArguments(
        task_name="superglue", dataset_name="rte", train_file=str(tmp_path / "RTE" / "train.jsonl")
    )
    assert TASKS["rte"].load(explicit, ["train"])["train"]["idx"] == [0, 1]


def test_boolq_question_first_and_json_boolean_labels(tmp_path):
    rows = [
        {"question": "is it wet", "passage": "Rain -- It rains.", "idx": 0, "label": True},
        {"question": "is it dry", "passage": "Sun.", "idx": 1, "label": False},
    ]
    raw, feats, _ = load_one("boolq", tmp_path, "BoolQ", rows)
    assert raw["label"] == [1, 0] and feats["labels"] == [1, 0]
    assert decode(feats[0]["input_ids"]) == "[CLS] is it wet [SEP] rain - - it rains. [SEP]"


def test_cb_three_labels(tmp_path):
    rows = [
        {"premise": "He left.", "hypothesis": "He stayed.", "label": lab, "idx": i}
        for i, lab in enumerate(["contradiction", "neutral", "entailment"])
    ]
    raw, feats, _ = load_one("cb", tmp_path, "CB", rows)
    assert feats["labels"] == [1, 2, 0]  # ("entailment", "contradiction", "neutral")
    assert decode(feats[0]["input_ids"]) == "[CLS] he left. [SEP] he stayed. [SEP]"


WIC_ROW = {
    "word": "bank",
    "sentence1": "The river bank.",
    "sentence2": "The bank lent money.",
    "idx": 0,
    "label": False,
    "start1": 10,
    "end1": 14,
    "start2": 4,
    "end2": 8,
    "version": 1.1,
}


def test_wic_template_0_is_one_text(tmp_path):
    raw, feats, _ = load_one("wic", tmp_path, "WiC", [WIC_ROW], template_id=0)
    assert raw.column_names == ["word", "sentence1", "sentence2", "idx", "label"]
    assert decode(feats[0]["input_ids"]) == (
        "[CLS] the river bank. the bank lent money. does bank have the same meaning in both sentences? [SEP]"
    )
    assert set(feats[0]["token_type_ids"]) == {0} and feats["labels"] == [0]


def test_wic_template_1_is_a_pair(tmp_path):
    _, feats, _ = load_one("wic", tmp_path, "WiC", [WIC_ROW], template_id=1)
    assert (
        decode(feats[0]["input_ids"])
        == "[CLS] bank : the river bank. [SEP] bank : the bank lent money. [SEP]"
    )


WSC_ROW = {
    "text": "Mark told Pete lies . He should have been skeptical .",
    "target": {"span1_index": 2, "span1_text": "Pete", "span2_index": 5, "span2_text": "He"},
    "idx": 3,
    "label": True,
}


def test_wsc_template_0(tmp_path):
    raw, feats, _ = load_one("wsc", tmp_path, "WSC", [WSC_ROW], template_id=0)
    assert raw[0]["span2_index"] == 5 and raw[0]["span1_text"] == "Pete" and raw["label"] == [1]
    assert decode(feats[0]["input_ids"]) == (
        "[CLS] he : mark told pete lies. he should have been skeptical. [SEP] pete [SEP]"
    )


def test_wsc_template_1_stars_the_pronoun(tmp_path):
    _, feats, _ = load_one("wsc", tmp_path, "WSC", [WSC_ROW], template_id=1)
    assert (
        decode(feats[0]["input_ids"])
        == "[CLS] mark told pete lies. * he * should have been skeptical. [SEP] pete [SEP]"
    )


def test_copa_two_choices_shape(tmp_path):
    rows = [
        {"premise": "The man fell.", "choice1": "He slipped.", "choice2": "He sang.", "question": "cause", "idx": 0,
         "label": 0},
        {"premise": "It rained.", "choice1": "We got wet.", "choice2": "We flew.", "question": "effect", "idx": 1,
         "label": 1},
    ]  # fmt: skip
    raw, feats, _ = load_one("copa", tmp_path, "COPA", rows, max_seq_length=16)
    task = TASKS["copa"]
    assert task.task_type == TaskType.MULTIPLE_CHOICE and task.hints.collator == "multiple_choice"
    assert task.label_list is None and task.num_labels == 1
    assert np.asarray(feats["input_ids"]).shape == (2, 2, 16)  # (examples, choices, T)
    assert np.asarray(feats["token_type_ids"]).shape == (2, 2, 16)
    assert feats["labels"] == [0, 1]
    assert decode(feats[0]["input_ids"][0]) == "[CLS] the man fell. because [SEP] he slipped. [SEP]"
    assert decode(feats[0]["input_ids"][1]) == "[CLS] the man fell. because [SEP] he sang. [SEP]"
    assert decode(feats[1]["input_ids"][1]) == "[CLS] it rained. so [SEP] we flew. [SEP]"


MULTIRC_ROWS = [
    {
        "idx": 0,
        "version": 1.1,
        "passage": {
            "text": "Tom has a red car.",
            "questions": [
                {"question": "What color?", "idx": 0, "answers": [{"text": "Red", "idx": 0, "label": 1},
                                                                 {"text": "Blue", "idx": 1, "label": 0}]},
                {"question": "Who?", "idx": 1, "answers": [{"text": "Tom", "idx": 2, "label": 1}]},
            ],
        },
    }
]  # fmt: skip


def test_multirc_one_row_per_answer(tmp_path):
    raw, feats, _ = load_one("multirc", tmp_path, "MultiRC", MULTIRC_ROWS)
    assert raw.column_names == ["paragraph", "question", "answer", "idx", "label"]
    assert raw["idx"] == [
        {"paragraph": 0, "question": 0, "answer": 0},
        {"paragraph": 0, "question": 0, "answer": 1},
        {"paragraph": 0, "question": 1, "answer": 2},
    ]
    assert feats["labels"] == [1, 0, 1] and feats["question_id"] == ["0-0", "0-0", "0-1"]
    assert decode(feats[1]["input_ids"]) == "[CLS] tom has a red car. [SEP] what color? blue [SEP]"
    assert TASKS["multirc"].main_metric == "f1a"


RECORD_ROWS = [
    {
        "source": "Daily mail",
        "idx": 7,
        "passage": {
            "text": "Obama met Merkel.\n@highlight\nBerlin talks",
            "entities": [{"start": 0, "end": 4}, {"start": 10, "end": 15}, {"start": 29, "end": 34},
                         {"start": 10, "end": 15}],
        },
        "qas": [
            {"query": "@placeholder hosted the talks.", "idx": 70, "answers": [{"start": 10, "end": 15,
                                                                                "text": "Merkel"}]},
            {"query": "@placeholder went to Berlin.", "idx": 71, "answers": [{"start": 0, "end": 4, "text": "Obama"}]},
        ],
    }
]  # fmt: skip


def test_record_one_feature_per_entity(tmp_path):
    raw, feats, _ = load_one("record", tmp_path, "ReCoRD", RECORD_ROWS)
    assert raw.column_names == ["passage", "query", "entities", "answers", "idx"]
    assert len(raw) == 2
    assert raw[0]["entities"] == ["Obama", "Merkel", "Berlin"]  # distinct, in order of appearance
    assert raw[0]["answers"] == ["Merkel"] and raw[1]["idx"] == {"passage": 7, "query": 71}
    assert len(feats) == 6
    assert feats["labels"] == [0, 1, 0, 1, 0, 0]
    assert feats["question_id"] == [70, 70, 70, 71, 71, 71]
    assert feats["entity"] == ["Obama", "Merkel", "Berlin"] * 2
    assert (
        decode(feats[1]["input_ids"])
        == "[CLS] obama met merkel. - berlin talks [SEP] merkel hosted the talks. [SEP]"
    )


def test_record_query_without_candidates_and_a_roberta_tokenizer(tmp_path):
    rows = [
        {"idx": 1, "passage": {"text": "No names here.", "entities": []},
         "qas": [{"query": "@placeholder left.", "idx": 5, "answers": [{"start": 0, "end": 1, "text": "No"}]}]},
        {"idx": 2, "passage": {"text": "Tom ran.", "entities": [{"start": 0, "end": 2}]},
         "qas": [{"query": "@placeholder ran.", "idx": 6, "answers": [{"start": 0, "end": 2, "text": "Tom"}]}]},
    ]  # fmt: skip
    write_jsonl(tmp_path / "ReCoRD" / "val.jsonl", rows)
    data_args = args("record", tmp_path)
    raw = TASKS["record"].load(data_args, ["validation"])["validation"]
    kwargs = {"tokenizer": roberta_tokenizer(), "data_args": data_args}
    for batch_size in (1, 2):  # a batch with no candidates at all, and a mixed one
        feats = raw.map(
            TASKS["record"].preprocess,
            batched=True,
            batch_size=batch_size,
            remove_columns=raw.column_names,
            fn_kwargs=kwargs,
        )
        assert feats.column_names == ["input_ids", "attention_mask", "labels", "question_id", "entity"]
        assert feats["question_id"] == [6] and feats["labels"] == [1]
    # the query without candidates still counts, with the empty prediction
    scores = TASKS["record"].compute_metrics(np.array([[0.0, 1.0]]), feats, raw, data_args)
    assert scores == {"f1": 0.5, "exact_match": 0.5}


def test_truncation_longest_first_and_no_padding(tmp_path):
    rows = [{"premise": " ".join(["word"] * 40), "hypothesis": "short one", "label": "entailment", "idx": 0}]
    _, padded, _ = load_one("rte", tmp_path, "RTE", rows, max_seq_length=12)
    assert decode(padded[0]["input_ids"]) == "[CLS] word word word word word word word [SEP] short one [SEP]"
    _, dynamic, _ = load_one(
        "rte", tmp_path, "RTE", [RTE_ROWS[0]], max_seq_length=32, pad_to_max_length=False
    )
    assert len(dynamic[0]["input_ids"]) == 11  # no padding: the collator pads per batch


def test_test_split_without_labels(tmp_path):
    rows = [{"premise": "p", "hypothesis": "h", "idx": 0}]
    raw, feats, _ = load_one("rte", tmp_path, "RTE", rows, split="test")
    assert raw["label"] == [-1] and feats["labels"] == [-1]


# ------------------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------------------


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "SuperGLUE" / "RTE" / "val.jsonl"
    os.makedirs(path.parent)
    path.write_text(json.dumps(RTE_ROWS[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"val\.jsonl:2"):
        TASKS["rte"].load(args("rte", tmp_path / "SuperGLUE"), ["validation"])


def test_label_outside_the_set(tmp_path):
    rows = [RTE_ROWS[0], {**RTE_ROWS[1], "label": "maybe"}]
    with pytest.raises(
        DataError, match=r"val\.jsonl:2: label 'maybe' is not one of entailment, not_entailment"
    ):
        load_one("rte", tmp_path, "RTE", rows)


def test_missing_label_in_a_labelled_split(tmp_path):
    with pytest.raises(DataError, match=r"train\.jsonl:1: missing field\(s\) label"):
        load_one("boolq", tmp_path, "BoolQ", [{"question": "q", "passage": "p", "idx": 0}], split="train")


def test_missing_file_names_the_layout(tmp_path):
    os.makedirs(tmp_path / "SuperGLUE")
    with pytest.raises(DataError, match=r"expected CB/val\.jsonl or val\.jsonl"):
        TASKS["cb"].load(args("cb", tmp_path / "SuperGLUE"), ["validation"])


def test_wsc_pronoun_index_outside_the_text(tmp_path):
    row = {**WSC_ROW, "target": {**WSC_ROW["target"], "span2_index": 99}}
    with pytest.raises(DataError, match=r"val\.jsonl:1: span2_index 99 is outside the 11 words"):
        load_one("wsc", tmp_path, "WSC", [row])


def test_hub_fallback_selects_the_same_columns(monkeypatch):
    calls = []

    def fake_load_dataset(path, name=None, split=None, **kw):
        calls.append((path, name, split))
        return datasets.Dataset.from_dict(
            {
                "word": ["bank"],
                "sentence1": ["a"],
                "sentence2": ["b"],
                "start1": [0],
                "start2": [0],
                "end1": [1],
                "end2": [1],
                "idx": [0],
                "label": [1],
            }
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data_args = DataTrainingArguments(task_name="superglue", dataset_name="wic")
    loaded = TASKS["wic"].load(data_args, ["train", "validation"])
    assert calls == [("aps/super_glue", "wic", "train"), ("aps/super_glue", "wic", "validation")]
    assert loaded["validation"].column_names == ["word", "sentence1", "sentence2", "idx", "label"]
    assert TASKS["wic"].hub_id == "aps/super_glue"


def test_hub_failure_is_a_data_error(monkeypatch):
    def offline(*a, **kw):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="--data_dir"):
        TASKS["boolq"].load(
            DataTrainingArguments(task_name="superglue", dataset_name="boolq"), ["validation"]
        )


# ------------------------------------------------------------------------------------------------------------
# Metrics and leaderboard rows
# ------------------------------------------------------------------------------------------------------------


def logits_for(classes, n_classes):
    out = np.zeros((len(classes), n_classes))
    out[np.arange(len(classes)), classes] = 1.0
    return out


def test_cb_accuracy_and_macro_f1():
    features = datasets.Dataset.from_dict({"labels": [0, 0, 0, 1, 1, 2]})
    scores = TASKS["cb"].compute_metrics(logits_for([0, 0, 1, 1, 2, 2], 3), features, None, None)
    # accuracy 4/6; F1 per class 4/5, 2/4, 2/3 (see test_classification_metrics)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert scores["combined_score"] == pytest.approx((4 / 6 + (0.8 + 0.5 + 2 / 3) / 3) / 2)
    assert TASKS["cb"].main_metric == "accuracy"


def test_multirc_f1a_and_em_over_two_questions():
    # question A (3 options) all right; question B (2 options) one wrong
    features = datasets.Dataset.from_dict(
        {"labels": [1, 0, 1, 1, 0], "question_id": ["0-0"] * 3 + ["0-1"] * 2}
    )
    scores = TASKS["multirc"].compute_metrics(logits_for([1, 0, 1, 1, 1], 2), features, None, None)
    assert scores["em"] == 0.5
    # TP 3, FP 1 (last option), FN 0: 6 / 7
    assert scores["f1a"] == pytest.approx(6 / 7)


RECORD_EXAMPLES = datasets.Dataset.from_dict(
    {"idx": [{"passage": 0, "query": 70}, {"passage": 0, "query": 71}], "answers": [["Obama"], ["Merkel"]]}
)
RECORD_FEATURES = datasets.Dataset.from_dict(
    {
        "question_id": [70, 70, 71, 71],
        "entity": ["Merkel", "Barack Obama", "Merkel", "Berlin"],
        "labels": [0, 0, 1, 0],
    }
)
# query 70: Merkel has the larger class-1 logit (6 > 2) but the smaller class-1 probability (σ(1) < σ(2))
RECORD_LOGITS = np.array([[5.0, 6.0], [0.0, 2.0], [0.0, 3.0], [1.0, 0.0]])


def test_record_picks_the_entity_by_softmax_and_scores_squad_style():
    scores = TASKS["record"].compute_metrics(RECORD_LOGITS, RECORD_FEATURES, RECORD_EXAMPLES, None)
    # query 70 predicts "Barack Obama" vs gold "Obama": precision 1/2, recall 1 -> F1 2/3, EM 0; query 71 exact
    assert scores["f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert scores["exact_match"] == 0.5
    assert TASKS["record"].main_metric == "f1"


def test_leaderboard_rows():
    examples = datasets.Dataset.from_dict({"idx": [5, 6]})
    two = logits_for([1, 0], 2)
    assert TASKS["boolq"].predictions_to_records(two, None, examples, None) == [
        {"idx": 5, "label": "true"},
        {"idx": 6, "label": "false"},
    ]
    assert [r["label"] for r in TASKS["wic"].predictions_to_records(two, None, examples, None)] == [
        "true",
        "false",
    ]
    assert [r["label"] for r in TASKS["wsc"].predictions_to_records(two, None, examples, None)] == [
        "True",
        "False",
    ]
    assert [r["label"] for r in TASKS["rte"].predictions_to_records(two, None, examples, None)] == [
        "not_entailment",
        "entailment",
    ]
    assert TASKS["copa"].predictions_to_records(two, None, examples, None) == [
        {"idx": 5, "label": 1},
        {"idx": 6, "label": 0},
    ]
    cb = TASKS["cb"].predictions_to_records(logits_for([2, 1], 3), None, examples, None)
    assert [r["label"] for r in cb] == ["neutral", "contradiction"]
    json.dumps(cb)


def test_multirc_and_record_rows_are_grouped():
    examples = datasets.Dataset.from_dict(
        {
            "idx": [
                {"paragraph": 0, "question": 0, "answer": 0},
                {"paragraph": 0, "question": 0, "answer": 1},
                {"paragraph": 0, "question": 1, "answer": 2},
                {"paragraph": 1, "question": 2, "answer": 3},
            ]
        }
    )
    rows = TASKS["multirc"].predictions_to_records(logits_for([1, 0, 0, 1], 2), None, examples, None)
    assert rows == [
        {
            "idx": 0,
            "passage": {
                "questions": [
                    {"idx": 0, "answers": [{"idx": 0, "label": 1}, {"idx": 1, "label": 0}]},
                    {"idx": 1, "answers": [{"idx": 2, "label": 0}]},
                ]
            },
        },
        {"idx": 1, "passage": {"questions": [{"idx": 2, "answers": [{"idx": 3, "label": 1}]}]}},
    ]
    assert TASKS["record"].predictions_to_records(RECORD_LOGITS, RECORD_FEATURES, RECORD_EXAMPLES, None) == [
        {"idx": 70, "label": "Barack Obama"},
        {"idx": 71, "label": "Merkel"},
    ]


def test_every_dataset_is_registered_once_with_the_linear_schedule():
    assert list(TASKS) == ["boolq", "cb", "rte", "wic", "wsc", "copa", "multirc", "record"]
    assert {t.hints.schedule for t in TASKS.values()} == {"linear"}
    assert {t.family for t in TASKS.values()} == {"superglue"}


# ------------------------------------------------------------------------------------------------------------
# The real files (../shared/data/superglue)
# ------------------------------------------------------------------------------------------------------------


def real(name, splits):
    """One case of test_real_split_sizes, skipped unless the exact files it reads are there."""
    folder = next(spec.folder for spec in SPECS if spec.name == name)
    return pytest.param(
        name, splits, marks=needs_real(*(f"superglue/{folder}/{LAYOUT[s][0]}" for s in splits)), id=name
    )


@pytest.mark.parametrize(
    "name, splits",
    [
        real("rte", {"train": 2490, "validation": 277}),
        real("wsc", {"train": 554, "validation": 104}),
        real("copa", {"train": 400, "validation": 100}),
        real("boolq", {"validation": 3270}),
        real("multirc", {"validation": 4848}),
    ],
)
def test_real_split_sizes(name, splits):
    loaded = TASKS[name].load(args(name, REAL), list(splits))
    assert {s: len(d) for s, d in loaded.items()} == splits
    for split in splits:
        assert min(loaded[split]["label"]) >= 0  # every labelled example mapped


@needs_real("superglue/MultiRC/val.jsonl")
def test_real_multirc_questions_and_first_feature():
    data_args = args("multirc", REAL, max_seq_length=32)
    raw = TASKS["multirc"].load(data_args, ["validation"])["validation"]
    assert len({(i["paragraph"], i["question"]) for i in raw["idx"]}) == 953
    feats = featurize("multirc", raw.select(range(4)), data_args)
    assert decode(feats[0]["input_ids"]).startswith("[CLS] what causes a change in motion?")


@needs_real("superglue/RTE/test.jsonl")
def test_real_rte_test_split_and_folder_level_data_dir():
    loaded = TASKS["rte"].load(args("rte", os.path.join(REAL, "RTE")), ["test"])
    assert len(loaded["test"]) == 3000 and set(loaded["test"]["label"]) == {-1}
