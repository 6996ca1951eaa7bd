"""GLUE tasks: TSV fixtures in the GLUE download script's format (header quirks included) written here, loaded
with Task.load and mapped with Task.preprocess as run.py does; bad files; the Hub path with a stubbed loader;
metrics and prediction rows against hand-computed values; counts of the real files in ../shared/data."""

import os

import datasets
import numpy as np
import pytest

from arguments import DataTrainingArguments
from tasks.glue import LAYOUT, SPECS, TASKS
from tasks.registry import DataError
from tests.fixtures import needs_real
from tests.tiny import bert_tokenizer

REAL = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "glue"
)

MNLI_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2"
)


def tsv(*rows):
    return "".join("\t".join(r) + "\n" for r in rows)


def write(path, text, encoding="utf-8"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write(text)


def args(name, data_dir, **kw):
    kw.setdefault("max_seq_length", 32)
    return DataTrainingArguments(task_name="glue", dataset_name=name, data_dir=str(data_dir), **kw)


def featurize(name, raw, data_args):
    return raw.map(
        TASKS[name].preprocess,
        batched=True,
        remove_columns=raw.column_names,
        fn_kwargs={"tokenizer": bert_tokenizer(), "data_args": data_args},
    )


def decode(ids):
    return bert_tokenizer().decode(ids).replace(" [PAD]", "")


# (dataset, folder, dev file name, dev file text, expected columns, labels, idx, decoded first example)
CASES = [
    (
        "cola", "CoLA", "dev.tsv",
        tsv(("gj04", "1", "", "The sailors rode."), ("gj04", "0", "*", "Sailors the rode.")),  # no header
        ["sentence"], [1, 0], [0, 1], "[CLS] the sailors rode. [SEP]",
    ),
    (
        "mnli", "MNLI", "dev_matched.tsv",
        tsv((MNLI_HEADER + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label").split("\t"),
            ("9", "1", "1n", "gov", "(a)", "(b)", "(A)", "(B)", "He came.", "He left.", "contradiction",
             "neutral", "contradiction", "contradiction", "contradiction", "contradiction"),
            ("12", "2", "2e", "gov", "(a)", "(b)", "(A)", "(B)", "It rains.", "It is wet.", "neutral",
             "neutral", "neutral", "entailment", "neutral", "neutral")),
        ["premise", "hypothesis"], [2, 1], [9, 12], "[CLS] he came. [SEP] he left. [SEP]",
    ),
    (
        "mrpc", "MRPC", "dev.tsv",
        "\ufeff" + tsv(("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                       ("1", "1355540", "1355592", 'He said "pie" sells.', '"The pie sells.'),
                       ("0", "2029631", "2029565", "A b.", "C d.")),
        ["sentence1", "sentence2"], [1, 0], [0, 1], '[CLS] he said " pie " sells. [SEP] " the pie sells. [SEP]',
    ),
    (
        "qnli", "QNLI", "dev.tsv",
        tsv(("index", "question", "sentence", "label"), ("0", "Who came?", "Tom came.", "entailment"),
            ("1", "Why?", "No idea.", "not_entailment")),
        ["question", "sentence"], [0, 1], [0, 1], "[CLS] who came? [SEP] tom came. [SEP]",
    ),
    (
        "qqp", "QQP", "dev.tsv",
        tsv(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
            ("201359", "303345", "303346", "Why are dogs loyal?", "Why do dogs love us?", "1")),
        ["question1", "question2"], [1], [201359], "[CLS] why are dogs loyal? [SEP] why do dogs love us? [SEP]",
    ),
    (
        "rte", "RTE", "dev.tsv",
        tsv(("index", "sentence1", "sentence2", "label"), ("0", "Reeve died.", "Reeve had an accident.",
                                                           "not_entailment")),
        ["sentence1", "sentence2"], [1], [0], "[CLS] reeve died. [SEP] reeve had an accident. [SEP]",
    ),
    (
        "sst2", "SST-2", "dev.tsv",
        tsv(("sentence", "label"), ("it 's a charming journey . ", "1"), ("unflinchingly bleak", "0")),
        ["sentence"], [1, 0], [0, 1], "[CLS] it ' s a charming journey. [SEP]",
    ),
    (
        "stsb", "STS-B", "dev.tsv",
        tsv(("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
             "score"),
            ("0", "main-captions", "MSRvid", "2012test", "0000", "none", "none", "A man is dancing.",
             "A man dances.", "4.750")),
        ["sentence1", "sentence2"], [4.75], [0], "[CLS] a man is dancing. [SEP] a man dances. [SEP]",
    ),
    (
        "wnli", "WNLI", "dev.tsv",
        tsv(("index", "sentence1", "sentence2", "label"), ("0", "The drain is clogged.", "It is clogged.", "1")),
        ["sentence1", "sentence2"], [1], [0], "[CLS] the drain is clogged. [SEP] it is clogged. [SEP]",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, folder, filename, text, keys, labels, idx, first", CASES, ids=[c[0] for c in CASES]
)
def test_dev_file_loads_and_encodes(tmp_path, name, folder, filename, text, keys, labels, idx, first):
    write(tmp_path / "glue" / folder / filename, text)
    data_args = args(name, tmp_path / "glue")
    raw = TASKS[name].load(data_args, ["validation"])["validation"]
    assert sorted(raw.column_names) == sorted([*keys, "label", "idx"])
    assert raw["label"] == pytest.approx(labels) and raw["idx"] == idx
    feats = featurize(name, raw, data_args)
    assert set(feats.column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert len(feats[0]["input_ids"]) == 32  # padded to max_seq_length
    assert decode(feats[0]["input_ids"]) == first
    assert feats["labels"] == pytest.approx(labels)


def test_rte_exact_ids_and_task_folder_as_data_dir(tmp_path):
    write(tmp_path / "RTE" / "dev.tsv", tsv(("index", "sentence1", "sentence2", "label"),
                                            ("0", "The cat sat.", "A dog ran.", "entailment")))  # fmt: skip
    data_args = args("rte", tmp_path / "RTE", max_seq_length=12)
    feats = featurize("rte", TASKS["rte"].load(data_args, ["validation"])["validation"], data_args)
    assert feats[0]["input_ids"] == [101, 1996, 4937, 2938, 1012, 102, 1037, 3899, 2743, 1012, 102, 0]
    assert feats[0]["token_type_ids"] == [0] * 6 + [1] * 5 + [0]
    assert feats["labels"] == [0]


def test_cola_test_file_has_a_header_and_no_labels(tmp_path):
    write(
        tmp_path / "CoLA" / "test.tsv", tsv(("index", "sentence"), ("0", "Bill sang."), ("1", "Sang Bill."))
    )
    raw = TASKS["cola"].load(args("cola", tmp_path), ["test"])["test"]
    assert (
        raw["sentence"] == ["Bill sang.", "Sang Bill."] and raw["label"] == [-1, -1] and raw["idx"] == [0, 1]
    )


def test_mnli_mismatched_splits(tmp_path):
    header = (MNLI_HEADER + "\tlabel1\tgold_label").split("\t")
    row = (
        "0",
        "1",
        "1n",
        "fic",
        "(a)",
        "(b)",
        "(A)",
        "(B)",
        "She ran.",
        "She moved.",
        "entailment",
        "entailment",
    )
    write(tmp_path / "MNLI" / "dev_mismatched.tsv", tsv(header, row))
    write(tmp_path / "MNLI" / "test_mismatched.tsv", tsv(MNLI_HEADER.split("\t"), row[:10]))
    task = TASKS["mnli"]
    loaded = task.load(args("mnli", tmp_path), ["validation_mismatched", "test_mismatched"])
    assert loaded["validation_mismatched"]["label"] == [0] and loaded["test_mismatched"]["label"] == [-1]


def test_stsb_is_regression():
    task = TASKS["stsb"]
    assert task.label_list is None and task.num_labels == 1 and task.main_metric == "pearson"


def test_no_padding_when_asked(tmp_path):
    write(tmp_path / "SST-2" / "dev.tsv", tsv(("sentence", "label"), ("good", "1")))
    data_args = args("sst2", tmp_path, pad_to_max_length=False)
    feats = featurize("sst2", TASKS["sst2"].load(data_args, ["validation"])["validation"], data_args)
    assert decode(feats[0]["input_ids"]) == "[CLS] good [SEP]" and len(feats[0]["input_ids"]) == 3


# ------------------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------------------

RTE_HEADER = ("index", "sentence1", "sentence2", "label")


def test_label_outside_the_set(tmp_path):
    write(
        tmp_path / "RTE" / "dev.tsv", tsv(RTE_HEADER, ("0", "a", "b", "entailment"), ("1", "a", "b", "maybe"))
    )
    with pytest.raises(
        DataError, match=r"dev\.tsv:3: label 'maybe' is not one of entailment, not_entailment"
    ):
        TASKS["rte"].load(args("rte", tmp_path), ["validation"])


def test_numeric_label_out_of_range(tmp_path):
    write(tmp_path / "SST-2" / "dev.tsv", tsv(("sentence", "label"), ("good", "2")))
    with pytest.raises(DataError, match=r"dev\.tsv:2: label '2' is not one of 0, 1"):
        TASKS["sst2"].load(args("sst2", tmp_path), ["validation"])


def test_wrong_number_of_fields(tmp_path):
    write(tmp_path / "RTE" / "dev.tsv", tsv(RTE_HEADER, ("0", "a", "b")))
    with pytest.raises(DataError, match=r"dev\.tsv:2: 3 tab-separated fields, the header has 4"):
        TASKS["rte"].load(args("rte", tmp_path), ["validation"])


def test_missing_header(tmp_path):
    write(tmp_path / "QNLI" / "dev.tsv", tsv(("0", "q", "s", "entailment")))
    with pytest.raises(DataError, match=r"dev\.tsv:1: no header with the column\(s\) question, sentence"):
        TASKS["qnli"].load(args("qnli", tmp_path), ["validation"])


def test_missing_label_column_in_a_labelled_split(tmp_path):
    write(tmp_path / "RTE" / "train.tsv", tsv(("index", "sentence1", "sentence2"), ("0", "a", "b")))
    with pytest.raises(DataError, match=r"train\.tsv:1: no 'label' column"):
        TASKS["rte"].load(args("rte", tmp_path), ["train"])


def test_missing_file_names_the_layout(tmp_path):
    os.makedirs(tmp_path / "glue")
    with pytest.raises(DataError, match=r"expected MNLI/dev_matched\.tsv or dev_matched\.tsv"):
        TASKS["mnli"].load(args("mnli", tmp_path / "glue"), ["validation"])


def test_hub_fallback_renames_mnli_splits_and_selects_columns(monkeypatch):
    calls = []

    def fake_load_dataset(path, name=None, split=None, **kw):
        calls.append((path, name, split))
        return datasets.Dataset.from_dict({"premise": ["p"], "hypothesis": ["h"], "label": [2], "idx": [0]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = TASKS["mnli"].load(
        DataTrainingArguments(task_name="glue", dataset_name="mnli"), ["train", "validation"]
    )
    assert calls == [("nyu-mll/glue", "mnli", "train"), ("nyu-mll/glue", "mnli", "validation_matched")]
    assert loaded["validation"].column_names == ["premise", "hypothesis", "label", "idx"]


# ------------------------------------------------------------------------------------------------------------
# Metrics and prediction rows
# ------------------------------------------------------------------------------------------------------------


def logits_for(classes, n_classes=2):
    out = np.zeros((len(classes), n_classes))
    out[np.arange(len(classes)), classes] = 1.0
    return out


def test_cola_matthews():
    features = datasets.Dataset.from_dict({"labels": [1, 1, 1, 0, 0]})
    scores = TASKS["cola"].compute_metrics(logits_for([1, 1, 0, 0, 1]), features, None, None)
    assert scores == {"matthews_correlation": pytest.approx(1 / 6)}  # TP 2 TN 1 FP 1 FN 1
    assert TASKS["cola"].main_metric == "matthews_correlation"


def test_stsb_pearson_spearman_with_ties():
    features = datasets.Dataset.from_dict({"labels": [1.0, 3.0, 2.0, 4.0]})
    preds = np.array([[1.0], [2.0], [2.0], [3.0]])  # the regression head's (N, 1) output
    scores = TASKS["stsb"].compute_metrics(preds, features, None, None)
    # pearson: deviations -1 0 0 1 / -1.5 .5 -.5 1.5 -> 3 / sqrt(2 · 5); spearman: ranks 1 2.5 2.5 4 -> 4.5/sqrt(22.5)
    assert scores["pearson"] == pytest.approx(3 / np.sqrt(10))
    assert scores["spearmanr"] == pytest.approx(4.5 / np.sqrt(22.5))
    assert scores["combined_score"] == pytest.approx((3 / np.sqrt(10) + 4.5 / np.sqrt(22.5)) / 2)


def test_mrpc_accuracy_and_f1():
    features = datasets.Dataset.from_dict({"labels": [1, 0, 0, 1, 1]})
    scores = TASKS["mrpc"].compute_metrics(logits_for([1, 1, 0, 1, 0]), features, None, None)
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["f1"] == pytest.approx(4 / 6)  # TP 2 FP 1 FN 1
    assert TASKS["mrpc"].main_metric == "accuracy" and TASKS["qqp"].main_metric == "accuracy"


def test_prediction_rows_use_the_official_label_spelling():
    examples = datasets.Dataset.from_dict({"idx": [3, 4]})
    assert TASKS["rte"].predictions_to_records(logits_for([1, 0]), None, examples, None) == [
        {"index": 3, "prediction": "not_entailment"},
        {"index": 4, "prediction": "entailment"},
    ]
    assert [
        r["prediction"]
        for r in TASKS["sst2"].predictions_to_records(logits_for([1, 0]), None, examples, None)
    ] == [1, 0]
    stsb = TASKS["stsb"].predictions_to_records(np.array([[4.5], [0.25]]), None, examples, None)
    assert [r["prediction"] for r in stsb] == [4.5, 0.25]


def test_every_dataset_is_registered_once():
    assert list(TASKS) == ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli"]
    assert {t.hints.schedule for t in TASKS.values()} == {"linear"} and {
        t.hub_id for t in TASKS.values()
    } == {"nyu-mll/glue"}


# ------------------------------------------------------------------------------------------------------------
# The real files (../shared/data/glue)
# ------------------------------------------------------------------------------------------------------------


def real(name, splits):
    """One case of test_real_split_sizes, skipped unless the exact files it reads are there."""
    folder = next(spec.folder for spec in SPECS if spec.name == name)
    return pytest.param(
        name, splits, marks=needs_real(*(f"glue/{folder}/{LAYOUT[s][0]}" for s in splits)), id=name
    )


@pytest.mark.parametrize(
    "name, splits",
    [
        real("mrpc", {"train": 3668, "validation": 408}),
        real("stsb", {"train": 5749, "validation": 1500}),
        real("rte", {"validation": 277}),
        real("cola", {"validation": 1043}),
    ],
)
def test_real_split_sizes(name, splits):
    loaded = TASKS[name].load(args(name, REAL), list(splits))
    assert {s: len(d) for s, d in loaded.items()} == splits


@needs_real(
    "glue/MRPC/dev.tsv", "glue/MRPC/test.tsv", "glue/CoLA/dev.tsv", "glue/RTE/dev.tsv", "glue/STS-B/dev.tsv"
)
def test_real_label_counts_and_first_mrpc_example():
    mrpc = TASKS["mrpc"].load(args("mrpc", REAL), ["validation", "test"])
    assert sum(mrpc["validation"]["label"]) == 279 and len(mrpc["test"]) == 1725  # README: 1=279, 0=129
    assert mrpc["validation"][0]["sentence2"].startswith('"The foodservice pie')  # QUOTE_NONE keeps the quote
    assert sum(TASKS["cola"].load(args("cola", REAL), ["validation"])["validation"]["label"]) == 721
    rte = TASKS["rte"].load(args("rte", REAL), ["validation"])["validation"]
    assert rte["label"].count(0) == 146  # entailment 146, not_entailment 131
    stsb = TASKS["stsb"].load(args("stsb", REAL), ["validation"])["validation"]
    assert stsb[0]["label"] == 5.0 and stsb[1]["label"] == pytest.approx(4.75)
