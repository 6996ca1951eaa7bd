"""Task.read_example / examples_from_records: one raw user record (the fields of the task's official files,
as predict.py reads them) -> the task's raw rows, with exactly the columns and types `load` gives, unlabelled,
and the record's position as the example id. Every registered task either reads records or says why not; bad
records are a DataError naming file:line and the field; a round trip through preprocess and
predictions_to_records gives back the prediction under `prediction_key`."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import fixtures
from arguments import DataTrainingArguments
from tasks.registry import _REGISTRY, DataError, _load_families, get_task
from tiny import bert_tokenizer

_load_families()
TASKS = dict(_REGISTRY)
SUPPORTED = [key for key, task in TASKS.items() if task.prediction.read_example is not None]


def examples(family, name, records):
    where = [f"in.jsonl:{k + 1}" for k in range(len(records))]
    return get_task(family, name).examples_from_records(records, where)


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def load(family, name, root, split):
    args = DataTrainingArguments(task_name=family, dataset_name=name, data_dir=str(root))
    return get_task(family, name).load(args, [split])[split]


# ------------------------------------------------------------------------------------------------------------
# The contract on every registered task


@pytest.mark.parametrize("key", list(TASKS), ids="/".join)
def test_every_task_reads_records_or_says_why(key):
    task = TASKS[key]
    assert (task.prediction.read_example is None) != (task.prediction.unsupported is None)
    if task.prediction.read_example is None:
        with pytest.raises(DataError, match=f"--dataset_name {key[1]} cannot label raw records"):
            task.examples_from_records([{}], ["in.jsonl:1"])
    else:
        assert task.predictions_to_records is not None and task.prediction.raw_features is not None


def test_which_tasks_and_prediction_keys():
    # your own data's rows read records once resolved (tests/test_own_data.py): their labels come from its files
    unresolved = [("glue", "custom"), ("ner", "custom")]
    assert [key for key in TASKS if key not in SUPPORTED] == [("superglue", "record"), *unresolved]
    assert "run.py --do_predict" in TASKS["superglue", "record"].prediction.unsupported
    assert all(
        "labels come from your training file" in TASKS[key].prediction.unsupported for key in unresolved
    )
    keys = {key: task.prediction.key for key, task in TASKS.items() if task.prediction.read_example}
    expected = {
        "superglue": "label",
        "glue": "prediction",
        "ner": "tags",
        "srl": "tags",
        "qa": "prediction_text",
    }
    assert keys == {key: ("passage" if key[1] == "multirc" else expected[key[0]]) for key in SUPPORTED}


# ------------------------------------------------------------------------------------------------------------
# Hand-written records -> the exact raw rows (an idx/id or label in the record is overridden / ignored)

WSC_TARGET = {"span1_index": 1, "span2_index": 3, "span1_text": "Pete", "span2_text": "he"}
CASES = {
    ("superglue", "boolq"): (
        {"question": "is it?", "passage": "It is.", "idx": 42, "label": True},
        [{"question": "is it?", "passage": "It is.", "idx": 1, "label": -1}],
    ),
    ("superglue", "cb"): (
        {"premise": "P.", "hypothesis": "H."},
        [{"premise": "P.", "hypothesis": "H.", "idx": 1, "label": -1}],
    ),
    ("superglue", "rte"): (
        {"premise": "P.", "hypothesis": "H.", "idx": 7, "label": "entailment"},
        [{"premise": "P.", "hypothesis": "H.", "idx": 1, "label": -1}],
    ),
    ("superglue", "wic"): (
        {"word": "bank", "sentence1": "A bank.", "sentence2": "The bank."},
        [{"word": "bank", "sentence1": "A bank.", "sentence2": "The bank.", "idx": 1, "label": -1}],
    ),
    ("superglue", "wsc"): (
        {"text": "Mark told Pete he lied.", "target": WSC_TARGET, "idx": 3},
        [{"text": "Mark told Pete he lied.", **WSC_TARGET, "idx": 1, "label": -1}],
    ),
    ("superglue", "copa"): (
        {"premise": "It rained.", "choice1": "Wet.", "choice2": "Dry.", "question": "effect"},
        [{"premise": "It rained.", "choice1": "Wet.", "choice2": "Dry.", "question": "effect", "idx": 1,
          "label": -1}],
    ),
    ("superglue", "multirc"): (
        {"idx": 5, "passage": {"text": "Tom has a red car.", "questions": [
            {"question": "What color?", "idx": 0,
             "answers": [{"text": "Red", "idx": 0}, {"text": "Blue", "idx": 1}]},
            {"question": "Who?", "idx": 1, "answers": [{"text": "Tom", "idx": 2, "label": 1}]}]}},
        [{"paragraph": "Tom has a red car.", "question": "What color?", "answer": "Red",
          "idx": {"paragraph": 1, "question": 0, "answer": 0}, "label": -1},
         {"paragraph": "Tom has a red car.", "question": "What color?", "answer": "Blue",
          "idx": {"paragraph": 1, "question": 0, "answer": 1}, "label": -1},
         {"paragraph": "Tom has a red car.", "question": "Who?", "answer": "Tom",
          "idx": {"paragraph": 1, "question": 1, "answer": 2}, "label": -1}],
    ),
    ("glue", "rte"): (
        {"sentence1": "A.", "sentence2": "B.", "idx": 9, "label": "entailment"},
        [{"sentence1": "A.", "sentence2": "B.", "idx": 1, "label": -1}],
    ),
    ("glue", "qnli"): (
        {"question": "Q?", "sentence": "S."},
        [{"question": "Q?", "sentence": "S.", "idx": 1, "label": -1}],
    ),
    ("glue", "sst2"): ({"sentence": "Great."}, [{"sentence": "Great.", "idx": 1, "label": -1}]),
    ("glue", "stsb"): (
        {"sentence1": "A.", "sentence2": "B."},
        [{"sentence1": "A.", "sentence2": "B.", "idx": 1, "label": -1.0}],
    ),
    ("ner", "conll2003"): (
        {"tokens": ["EU", "rejects", "lamb"], "id": "x", "ner_tags": ["B-ORG", "O", "O"]},
        [{"id": "1", "tokens": ["EU", "rejects", "lamb"], "ner_tags": ["O", "O", "O"]}],
    ),
    ("ner", "ontonotes"): ({"tokens": ["Obama"]}, [{"id": "1", "tokens": ["Obama"], "ner_tags": ["O"]}]),
    ("srl", "conll2005"): (
        {"tokens": ["The", "cat", "sat"], "index": 2},
        [{"id": "1", "tokens": ["The", "cat", "sat"], "index": 2, "tags": ["O", "O", "O"]}],
    ),
    ("srl", "conll2012"): (
        {"tokens": ["He", "ran"], "index": 1},
        [{"id": "1", "tokens": ["He", "ran"], "index": 1, "tags": ["O", "O"]}],
    ),
    ("qa", "squad"): (
        {"question": "Who?", "context": "Tom ran.", "id": "q9"},
        [{"id": "1", "title": "", "context": "Tom ran.", "question": "Who?",
          "answers": {"text": [], "answer_start": []}}],
    ),
    ("qa", "squad_v2"): (
        {"question": "Who?", "context": "Tom ran.", "title": "Tom"},
        [{"id": "1", "title": "Tom", "context": "Tom ran.", "question": "Who?",
          "answers": {"text": [], "answer_start": []}}],
    ),
}  # fmt: skip


@pytest.mark.parametrize("key", list(CASES), ids="/".join)
def test_record_to_exact_raw_rows(key):
    record, expected = CASES[key]
    task = TASKS[key]
    assert task.prediction.read_example(record, 1, "in.jsonl:2") == expected
    # through examples_from_records the id is the record's position (here the second record)
    dataset, origin = task.examples_from_records([record, record], ["in.jsonl:1", "in.jsonl:2"])
    assert dataset.to_list()[len(expected) :] == expected
    assert origin == [0] * len(expected) + [1] * len(expected)


def test_multirc_rows_map_back_to_their_records():
    def record(*n_answers):
        questions = [
            {"question": f"q{q}", "idx": q, "answers": [{"text": f"a{a}", "idx": a} for a in range(n)]}
            for q, n in enumerate(n_answers)
        ]
        return {"idx": 99, "passage": {"text": "T.", "questions": questions}}

    dataset, origin = examples("superglue", "multirc", [record(2), record(), record(1, 2)])
    assert origin == [0, 0, 2, 2, 2]
    assert [i["paragraph"] for i in dataset["idx"]] == origin  # the leaderboard rows group by this idx
    assert [(i["question"], i["answer"]) for i in dataset["idx"]] == [(0, 0), (0, 1), (0, 0), (1, 0), (1, 1)]


# ------------------------------------------------------------------------------------------------------------
# The same columns and types as `load` on a tiny official file (and, for unlabelled test files, the same rows)


def _superglue(folder, rows):
    def write(root):
        write_jsonl(root / "SuperGLUE" / folder / "test.jsonl", [{**r, "idx": k} for k, r in enumerate(rows)])
        return root / "SuperGLUE"

    return write


RTE_ROWS = [{"premise": "The cat sat.", "hypothesis": "A cat sat."}, {"premise": "P.", "hypothesis": "H."}]
COPA_ROWS = [{"premise": "It rained.", "choice1": "Wet.", "choice2": "Dry.", "question": "effect"}]
WSC_ROWS = [{"text": "Mark told Pete he lied.", "target": WSC_TARGET}]
MULTIRC_ROWS = [
    {"passage": {"text": "Tom ran.", "questions": [{"question": "Who?", "idx": 0,
                                                    "answers": [{"text": "Tom", "idx": 0}]}]}},
    {"passage": {"text": "It rained.", "questions": [{"question": "What?", "idx": 0, "answers": [
        {"text": "Rain", "idx": 0}, {"text": "Snow", "idx": 1}]}]}},
]  # fmt: skip


def _glue_rte(root):
    write_text(
        root / "RTE" / "test.tsv", "index\tsentence1\tsentence2\n0\tThe cat sat.\tA cat sat.\n1\tP.\tH.\n"
    )
    return root


# (family, dataset, write the files under tmp_path -> data_dir, split, records, same rows as load's?)
LOADS = {
    "superglue/rte": ("superglue", "rte", _superglue("RTE", RTE_ROWS), "test", RTE_ROWS, True),
    "superglue/copa": ("superglue", "copa", _superglue("COPA", COPA_ROWS), "test", COPA_ROWS, True),
    "superglue/wsc": ("superglue", "wsc", _superglue("WSC", WSC_ROWS), "test", WSC_ROWS, True),
    "superglue/multirc": ("superglue", "multirc", _superglue("MultiRC", MULTIRC_ROWS), "test", MULTIRC_ROWS,
                          True),
    "glue/rte": ("glue", "rte", _glue_rte, "test",
                 [{"sentence1": "The cat sat.", "sentence2": "A cat sat."},
                  {"sentence1": "P.", "sentence2": "H."}],
                 True),
    "glue/stsb": ("glue", "stsb", lambda r: fixtures.glue_stsb(str(r)), "train",
                  [{"sentence1": "A.", "sentence2": "B."}], False),
    "ner/conll2003": ("ner", "conll2003", lambda r: fixtures.conll2003(str(r)), "test",
                      [{"tokens": ["EU", "rejects", "German", "call"]}], False),
    "ner/conll2004": ("ner", "conll2004", lambda r: fixtures.conll04_json(str(r)), "test",
                      [{"tokens": ["IBM", "hired", "him"]}], False),
    "srl/conll2005": ("srl", "conll2005", lambda r: fixtures.conll2005(str(r)), "test_wsj",
                      [{"tokens": ["He", "gave", "her", "a", "book", "yesterday"], "index": 1}], False),
    "qa/squad": ("qa", "squad", lambda r: fixtures.squad(str(r)), "validation",
                 [{"question": "Who?", "context": "Tom ran.", "title": "Tom"}], False),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LOADS))
def test_same_columns_and_types_as_load(tmp_path, case):
    family, name, write, split, records, same_rows = LOADS[case]
    loaded = load(family, name, write(tmp_path), split)
    dataset, _ = examples(family, name, records)
    assert dataset.column_names == loaded.column_names
    assert dataset.features == loaded.features
    if same_rows:  # an unlabelled official test file whose idx are the line positions: the very same rows
        assert dataset.to_list() == loaded.to_list()


# ------------------------------------------------------------------------------------------------------------
# Bad records: a DataError naming where (file:line), the field and the layout expected

BAD = [
    ("superglue", "rte", {"premise": "P."}, "missing field 'hypothesis'"),
    ("superglue", "rte", {"premise": "P.", "hypothesis": 3},
     "field 'hypothesis' must be a string, got an integer"),
    ("superglue", "boolq", "just text", "the record must be an object, got a string"),
    ("superglue", "wsc", {"text": "Mark told Pete he lied.", "target": {**WSC_TARGET, "span2_index": "3"}},
     "field 'target.span2_index' must be an integer, got a string"),
    ("superglue", "wsc", {"text": "Mark lied.", "target": {**WSC_TARGET, "span2_index": 9}},
     "span2_index 9 is outside the 2 words"),
    ("superglue", "copa", {"premise": "P.", "choice1": "A.", "choice2": "B."}, "missing field 'question'"),
    ("superglue", "multirc",
     {"passage": {"text": "T.", "questions": [{"question": "Q?", "idx": 0, "answers": [{"text": "A", "idx": True}]}]}},
     "field 'passage.questions[0].answers[0].idx' must be an integer, got a boolean"),
    ("superglue", "multirc", {"passage": {"text": "T.", "questions": {}}},
     "field 'passage.questions' must be a list, got an object"),
    ("glue", "mrpc", {"#1 String": "A.", "#2 String": "B."}, "missing field 'sentence1'"),
    ("glue", "sst2", {"sentence": None}, "field 'sentence' must be a string, got null"),
    ("ner", "conll2003", {"tokens": "EU rejects"}, "field 'tokens' must be a list, got a string"),
    ("ner", "conll2003", {"tokens": ["EU", 3]}, "field 'tokens[1]' must be a string, got an integer"),
    ("ner", "ontonotes", {"tokens": ["EU", " "]}, "field 'tokens[1]' is blank"),
    ("ner", "conll2004", {"tokens": []}, "field 'tokens' is an empty list"),
    ("srl", "conll2005", {"tokens": ["He", "ran"]}, "missing field 'index'"),
    ("srl", "conll2005", {"tokens": ["He", "ran"], "index": 1.0},
     "field 'index' must be an integer, got a number"),
    ("srl", "conll2012", {"tokens": ["He", "ran"], "index": 2}, "index 2 is outside the 2 tokens"),
    ("qa", "squad", {"question": "Who?"}, "missing field 'context'"),
    ("qa", "squad_v2", {"question": "Who?", "context": "C.", "title": 1}, "field 'title' must be a string"),
]  # fmt: skip


GOOD = {
    "glue": {"sentence1": "A.", "sentence2": "B."},
    "ner": {"tokens": ["A"]},
}  # datasets without a CASES row


@pytest.mark.parametrize("family,name,record,message", BAD, ids=lambda v: v if isinstance(v, str) else "")
def test_bad_record_names_where_and_field(family, name, record, message):
    good = CASES[family, name][0] if (family, name) in CASES else GOOD[family]
    with pytest.raises(DataError) as err:
        examples(family, name, [good, good, record])  # the third record: in.jsonl:3
    assert str(err.value).startswith("in.jsonl:3: ") and message in str(err.value)


def test_missing_and_ill_typed_fields_list_the_layout():
    with pytest.raises(DataError) as err:
        examples("superglue", "wic", [{"word": "bank", "sentence1": "A bank."}])
    assert str(err.value) == (
        "in.jsonl:1: missing field 'sentence2'; "
        "expected {word: string, sentence1: string, sentence2: string}."
    )
    with pytest.raises(DataError) as err:
        examples("srl", "conll2005", [{"tokens": ["He"], "index": "0"}])
    assert str(err.value) == (
        "in.jsonl:1: field 'index' must be an integer, got a string; "
        "expected {tokens: [string, ...], index: integer}."
    )


# ------------------------------------------------------------------------------------------------------------
# Round trip: records -> preprocess -> hand-made logits -> predictions_to_records[prediction_key]


def featurize(task, dataset, args):
    return dataset.map(
        task.preprocess,
        batched=True,
        remove_columns=dataset.column_names,
        fn_kwargs={"tokenizer": bert_tokenizer(), "data_args": args},
    )


def test_round_trip_rte():
    task = get_task("superglue", "rte")
    args = DataTrainingArguments(task_name="superglue", dataset_name="rte", max_seq_length=32)
    dataset, origin = examples("superglue", "rte", RTE_ROWS + [{"premise": "X.", "hypothesis": "Y."}])
    features = featurize(task, dataset, args)
    assert features["labels"] == [-1, -1, -1] and len(features[0]["input_ids"]) == 32
    logits = np.array([[0.0, 1.0], [2.0, -1.0], [0.0, 3.0]])
    rows = task.predictions_to_records(logits, features, dataset, args)
    assert [row["idx"] for row in rows] == origin == [0, 1, 2]
    labels = [row[task.prediction.key] for row in rows]
    assert labels == ["not_entailment", "entailment", "not_entailment"]


def test_round_trip_conll2003():
    task = get_task("ner", "conll2003")
    args = DataTrainingArguments(task_name="ner", dataset_name="conll2003", pad_to_max_length=False)
    records = [
        {"tokens": ["Peter", "Blackburn", "visited", "Brussels"]},
        {"tokens": ["EU", "rejects", "lamb"]},
    ]
    wanted = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "O"]]
    dataset, _ = examples("ner", "conll2003", records)
    features = featurize(task, dataset, args)
    width = max(len(labels) for labels in features["labels"])
    logits = np.full((len(features), width, task.num_labels), -100.0)
    for i, (labels, tags) in enumerate(zip(features["labels"], wanted, strict=True)):
        positions = [k for k, label in enumerate(labels) if label != -100]  # each word's first sub-token
        assert len(positions) == len(tags)
        logits[i, : len(labels)] = 0.0
        for k, tag in zip(positions, tags, strict=True):
            logits[i, k, task.label_list.index(tag)] = 1.0
    rows = task.predictions_to_records(logits, features, dataset, args)
    assert [row["tokens"] for row in rows] == [r["tokens"] for r in records]
    assert [row[task.prediction.key] for row in rows] == wanted


def test_round_trip_squad():
    task = get_task("qa", "squad")
    args = DataTrainingArguments(task_name="qa", dataset_name="squad", max_seq_length=32, doc_stride=8)
    context = "Paris is the capital and largest city of France."
    dataset, _ = examples("qa", "squad", [{"question": "What is the capital of France?", "context": context}])
    features = featurize(task, dataset, args)
    assert features["example_id"] == ["0"] * len(features)
    offsets = features[0]["offset_mapping"]
    start = next(k for k, o in enumerate(offsets) if o is not None and o[0] == 0)
    end = next(k for k, o in enumerate(offsets) if o is not None and o[1] == len("Paris"))
    width = len(features[0]["input_ids"])
    start_logits, end_logits = np.zeros((len(features), width)), np.zeros((len(features), width))
    start_logits[0, start] = end_logits[0, end] = 5.0
    rows = task.predictions_to_records((start_logits, end_logits), features, dataset, args)
    assert rows == [{"id": "0", task.prediction.key: "Paris", "score": 10.0}]  # its start + end logit
