"""SRL tasks: one-line-per-predicate fixtures -> load -> (words, predicate) pair encoding -> span F1 +/- V."""

import os

import numpy as np
import pytest

from arguments import DataTrainingArguments
from tasks import srl
from tasks.registry import DataError
from tiny import bert_tokenizer, roberta_tokenizer

LINES = [
    "1 EU rejects German call ||| B-A0 B-V B-A1 I-A1",
    "",
    "3 The fox quickly jumps ||| B-A0 I-A0 B-AM-MNR B-V",
]
CONLL05_FILES = ("conll05.train.txt", "conll05.devel.txt", "conll05.test.wsj.txt", "conll05.test.brown.txt")


def data_args(path, name="conll2005", **kw):
    kw.setdefault("pad_to_max_length", False)
    return DataTrainingArguments(task_name="srl", dataset_name=name, data_dir=str(path), **kw)


def write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def to_features(task, ds, tokenizer, args):
    return ds.map(lambda b: task.preprocess(b, tokenizer, args), batched=True, remove_columns=ds.column_names)


@pytest.fixture
def conll05(tmp_path):
    for name in CONLL05_FILES:
        write(str(tmp_path / "CoNLL05" / name), LINES)
    return tmp_path


def labels_of(task, names):
    return [task.label_list.index(n) if n else -100 for n in names]


def test_registered_rows_and_inventories():
    c05, c12 = srl.TASKS["conll2005"], srl.TASKS["conll2012"]
    assert (len(c05.label_list), len(c12.label_list)) == (
        106,
        116,
    )  # the original's ClassLabel sizes
    for task in (c05, c12):
        assert task.label_list[0] == "O" and list(task.label_list[1:]) == sorted(task.label_list[1:])
        assert (task.main_metric, task.hints.schedule, task.hints.collator) == (
            "f1",
            "exponential",
            "token_classification",
        )
        assert task.hints.pretokenized
    assert c05.test_splits == ("test_wsj", "test_brown") and c12.test_splits == ("test",)
    assert {"B-V", "I-V", "B-C-V", "B-R-AA", "I-AM-TM"} <= set(c05.label_list)
    assert {"B-ARGM-LVB", "B-R-ARG5", "I-C-ARGM-MOD"} <= set(c12.label_list) and "I-V" not in c12.label_list


def test_load_all_conll05_splits(conll05):
    raw = srl.TASKS["conll2005"].load(data_args(conll05), ["train", "validation", "test_wsj", "test_brown"])
    assert set(raw) == {"train", "validation", "test_wsj", "test_brown"}
    assert raw["test_brown"].column_names == ["id", "tokens", "index", "tags"] and len(raw["test_brown"]) == 2
    tokens, tags = "The fox quickly jumps".split(), "B-A0 I-A0 B-AM-MNR B-V".split()
    assert raw["train"][1] == {"id": "1", "tokens": tokens, "index": 3, "tags": tags}


def test_conll2012_test_split_is_named_test(tmp_path):
    lines = ["0 Stocks fell ||| B-V O", "1 Stocks fell ||| B-ARG1 B-V"]
    write(str(tmp_path / "conll2012" / "conll2012.test.txt"), lines)
    raw = srl.TASKS["conll2012"].load(data_args(tmp_path, "conll2012"), ["test"])
    assert raw["test"]["tags"] == [["B-V", "O"], ["B-ARG1", "B-V"]]


def test_bert_pair_encoding_equals_the_original_input(conll05):
    task, args, tok = srl.TASKS["conll2005"], data_args(conll05), bert_tokenizer()
    raw = task.load(args, ["train"])["train"]
    row = to_features(task, raw, tok, args)[0]
    tokens = tok.convert_ids_to_tokens(row["input_ids"])
    assert tokens == "[CLS] eu rejects german call [SEP] rejects [SEP]".split()
    assert row["token_type_ids"] == [0] * 8
    assert row["labels"] == labels_of(task, [None, "B-A0", "B-V", "B-A1", "I-A1", None, None, None])
    # the original: words + ["[SEP]", predicate] as one sequence -> same ids for BERT
    original = tok(raw[0]["tokens"] + ["[SEP]", "rejects"], is_split_into_words=True)
    assert original["input_ids"] == row["input_ids"] and original["token_type_ids"] == row["token_type_ids"]


def test_roberta_marks_the_predicate_with_the_real_separator(conll05):
    task, args, tok = srl.TASKS["conll2005"], data_args(conll05), roberta_tokenizer()
    row = to_features(task, task.load(args, ["train"])["train"], tok, args)[0]
    tokens = tok.convert_ids_to_tokens(row["input_ids"])
    assert tokens == "<s> ĠEU Ġrej ect s ĠGer man Ġcal l </s> </s> Ġrej ect s </s>".split()
    assert "[" not in "".join(tokens)  # no literal "[SEP]" pieces (the original's bug)
    assert row["labels"] == labels_of(
        task,
        [None, "B-A0", "B-V", None, None, "B-A1", None, "I-A1", None, None, None, None, None, None, None],
    )


@pytest.mark.parametrize("tokenizer", [bert_tokenizer, roberta_tokenizer])
def test_truncation_cuts_the_sentence_never_the_predicate(tmp_path, tokenizer):
    words = "Peter Blackburn went to Brussels on Monday and said the meat was safe".split()
    tags = ["B-A0", "I-A0", "O", "O", "O", "O", "O", "O", "B-V", "B-A1", "I-A1", "I-A1", "I-A1"]
    write(str(tmp_path / "conll05.train.txt"), [f"8 {' '.join(words)} ||| {' '.join(tags)}"])
    task, args, tok = srl.TASKS["conll2005"], data_args(tmp_path, max_seq_length=10), tokenizer()
    row = to_features(task, task.load(args, ["train"])["train"], tok, args)[0]
    assert len(row["input_ids"]) == 10 == len(row["labels"])
    tail = tok(["said"], is_split_into_words=True, add_special_tokens=False)[
        "input_ids"
    ]  # the predicate segment
    assert row["input_ids"][-len(tail) - 1 : -1] == tail and row["input_ids"][-1] == tok.sep_token_id
    enc = tok(words, ["said"], is_split_into_words=True, truncation="only_first", max_length=10)
    kept = sorted({w for w, s in zip(enc.word_ids(), enc.sequence_ids(), strict=True) if s == 0})
    assert [x for x in row["labels"] if x != -100] == [task.label_list.index(tags[w]) for w in kept]


def test_malformed_lines_name_file_and_line(tmp_path):
    task, args = srl.TASKS["conll2005"], data_args(tmp_path)
    cases = {
        "1 EU rejects German B-A0 B-V B-A1": r"conll05\.train\.txt:2: expected '<predicate index>",
        "x EU rejects ||| B-A0 B-V": r":2: predicate index 'x' is not an integer",
        "1 EU rejects ||| B-A0": r":2: 2 tokens but 1 tags",
        "5 EU rejects ||| B-A0 B-V": r":2: predicate index 5 outside the 2 tokens",
        "1 EU rejects ||| B-A0 B-VERB": r":2 \(token 1\): unknown tag 'B-VERB'",
    }
    for bad, message in cases.items():
        write(str(tmp_path / "conll05.train.txt"), [LINES[0], bad])
        with pytest.raises(DataError, match=message):
            task.load(args, ["train"])


def test_missing_file_unknown_split_and_no_data_dir(tmp_path):
    task = srl.TASKS["conll2005"]
    with pytest.raises(DataError, match=r"CoNLL05/conll05\.test\.brown\.txt"):
        task.load(data_args(tmp_path), ["test_brown"])
    with pytest.raises(DataError, match="no split 'test'.*test_wsj"):
        task.load(data_args(tmp_path), ["test"])
    with pytest.raises(DataError, match="no Hugging Face Hub copy.*--data_dir"):
        task.load(DataTrainingArguments(task_name="srl", dataset_name="conll2005"), ["train"])


def test_f1_excludes_the_predicate_span_and_f1_with_v_counts_it(conll05):
    task, args = srl.TASKS["conll2005"], data_args(conll05)
    raw = task.load(args, ["validation"])["validation"]
    feats = to_features(task, raw, bert_tokenizer(), args)
    # sentence 0 predicted B-A0 B-V B-A2 I-A2 (A1 mislabelled A2); sentence 1 exactly right
    predicted = [["B-A0", "B-V", "B-A2", "I-A2"], ["B-A0", "I-A0", "B-AM-MNR", "B-V"]]
    n = len(task.label_list)
    logits = np.full((2, max(len(r) for r in feats["labels"]), n), -100.0)
    for i, (labels, tags) in enumerate(zip(feats["labels"], predicted, strict=True)):
        positions = [k for k, lab in enumerate(labels) if lab != -100]
        for k, tag in zip(positions, tags, strict=True):
            logits[i, k] = np.eye(n)[task.label_list.index(tag)]
    m = task.compute_metrics(logits, feats, raw, args)
    # without V: gold A0 A1 | A0 AM-MNR (4), predicted A0 A2 | A0 AM-MNR (4), 3 right
    assert (
        m["precision"] == pytest.approx(3 / 4)
        and m["recall"] == pytest.approx(3 / 4)
        and m["f1"] == pytest.approx(3 / 4)
    )
    # with V (the original's number): 6 chunks each side, 5 right
    assert m["f1_with_v"] == pytest.approx(5 / 6) and m["precision_with_v"] == pytest.approx(5 / 6)
    assert m["accuracy"] == pytest.approx(6 / 8)
    records = task.predictions_to_records(logits, feats, raw, args)
    assert records[0] == {"tokens": ["EU", "rejects", "German", "call"], "tags": predicted[0], "index": 1}
