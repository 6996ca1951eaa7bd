"""Retrieval data readers (tasks/retrieval_data.py): BEIR folders and DPR retriever JSON, written here as tiny
files, read back to exact values; every refusal is one DataError line naming the file (and line or example)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace

import pytest

from tasks.registry import DataError
from tasks.retrieval_data import (
    DprExample,
    RetrievalSplit,
    eval_split,
    expand_paths,
    load_beir,
    load_dpr,
)

BOM = b"\xef\xbb\xbf"
HEADER = "query-id\tcorpus-id\tscore"

CORPUS = [
    {"_id": "d1", "title": "Paris", "text": "Paris is the capital of France.", "metadata": {}},
    {"_id": "d2", "title": "", "text": "The fox jumps."},
    {"_id": 3, "text": "No title here."},  # an integer id and a missing title, both seen in user files
    {"_id": "d4", "title": None, "text": "Null title."},
]
QUERIES = [
    {"_id": "q1", "text": "capital of France?"},
    {"_id": "q2", "text": "what jumps?"},
    {"_id": "q3", "text": "never judged"},
]
TEST_QRELS = ["q2\td2\t2", "q1\td1\t1", "q1\t3\t0", "q2\td4\t-1"]


def write_text(path, lines, *, bom=False, crlf=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = "".join(line + ("\r\n" if crlf else "\n") for line in lines).encode("utf-8")
    with open(path, "wb") as f:
        f.write((BOM if bom else b"") + data)


def beir_folder(root, *, corpus=CORPUS, queries=QUERIES, qrels=None, **style):
    """A BEIR folder under root (the test split's qrels unless `qrels` maps split -> lines); returns its path."""
    folder = str(root)
    write_text(os.path.join(folder, "corpus.jsonl"), [json.dumps(r) for r in corpus], **style)
    write_text(os.path.join(folder, "queries.jsonl"), [json.dumps(r) for r in queries], **style)
    for split, lines in (qrels or {"test": TEST_QRELS}).items():
        write_text(os.path.join(folder, "qrels", f"{split}.tsv"), [HEADER, *lines], **style)
    return folder


EXPECTED = RetrievalSplit(
    corpus={
        "d1": ("Paris", "Paris is the capital of France."),
        "d2": ("", "The fox jumps."),
        "3": ("", "No title here."),
        "d4": ("", "Null title."),
    },
    queries={"q2": "what jumps?", "q1": "capital of France?"},
    qrels={"q2": {"d2": 2, "d4": -1}, "q1": {"d1": 1, "3": 0}},
)


# ------------------------------------------------------------------------------------------------ BEIR: values


def test_beir_exact_values(tmp_path):
    split = load_beir(beir_folder(tmp_path), "test")
    assert split == EXPECTED
    assert list(split.corpus) == ["d1", "d2", "3", "d4"]  # file order
    assert list(split.queries) == ["q2", "q1"]  # judged queries only, in qrels order (BEIR's loader)


@pytest.mark.parametrize("style", [{"bom": True}, {"crlf": True}, {"bom": True, "crlf": True}])
def test_beir_bom_and_crlf_read_the_same(tmp_path, style):
    assert load_beir(beir_folder(tmp_path, **style), "test") == EXPECTED


def test_beir_splits_and_blank_lines(tmp_path):
    folder = beir_folder(tmp_path, qrels={"train": ["q3\td1\t1", ""], "test": TEST_QRELS})
    train = load_beir(folder, "train")
    assert train.queries == {"q3": "never judged"} and train.qrels == {"q3": {"d1": 1}}
    with pytest.raises(ValueError, match="unknown BEIR split 'validation'; choose one of: train, dev, test"):
        load_beir(folder, "validation")


def test_eval_split_follows_the_original(tmp_path):
    """evaluate_on_beir.sh: dev for msmarco, test for all others, also those shipping a dev.tsv (BEIR's table)."""
    both = {"dev": ["q1\td1\t1"], "test": ["q1\td1\t1"]}
    assert eval_split(beir_folder(tmp_path / "msmarco", qrels=both)) == "dev"
    assert eval_split(beir_folder(tmp_path / "nfcorpus", qrels=both)) == "test"
    assert eval_split(beir_folder(tmp_path / "mine", qrels={"dev": ["q1\td1\t1"]})) == "dev"
    assert eval_split(beir_folder(tmp_path / "scifact", qrels={"train": ["q1\td1\t1"]})) == "test"
    assert eval_split(str(tmp_path / "msmarco") + os.sep) == "dev"


# ------------------------------------------------------------------------------------------------ BEIR: errors


def refuse(folder, message, split="test", **kwargs):
    """load_beir raises one DataError line equal to `message`."""
    with pytest.raises(DataError) as err:
        load_beir(folder, split, **kwargs)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_beir_missing_files_name_the_layout(tmp_path):
    layout = "corpus.jsonl, queries.jsonl and qrels/{train,dev,test}.tsv (the BEIR layout, as unzipped from the BEIR server)"
    refuse(
        str(tmp_path / "nope"),
        f"{tmp_path / 'nope'}: no such folder; expected a BEIR folder holding {layout}.",
    )
    folder = beir_folder(tmp_path / "f")
    refuse(folder, f"{folder}/qrels/dev.tsv: no such file; expected {layout}.", split="dev")
    os.remove(os.path.join(folder, "queries.jsonl"))
    refuse(folder, f"{folder}/queries.jsonl: no such file; expected {layout}.")


def test_beir_folder_of_folders_names_them(tmp_path):
    beir_folder(tmp_path / "cqadupstack" / "android")
    beir_folder(tmp_path / "cqadupstack" / "english")
    parent = str(tmp_path / "cqadupstack")
    with pytest.raises(
        DataError,
        match=r"corpus.jsonl: no such file; .*this folder holds BEIR folders \(android, english\): pass one of them\.$",
    ):
        load_beir(parent, "test")


def test_beir_malformed_lines(tmp_path):
    folder = beir_folder(tmp_path, corpus=[*CORPUS[:2], "not an object"])
    refuse(folder, f"{folder}/corpus.jsonl:3: expected a JSON object, got str.")
    write_text(os.path.join(folder, "corpus.jsonl"), [json.dumps(CORPUS[0]), '{"_id": "d2", "text": '])
    with pytest.raises(DataError, match=r"/corpus\.jsonl:2: not valid JSON \("):
        load_beir(folder, "test")
    for record, message in [
        ({"title": "t", "text": "x"}, "'_id' must be a non-empty string, got None."),
        ({"_id": "", "text": "x"}, "'_id' must be a non-empty string, got ''."),
        ({"_id": True, "text": "x"}, "'_id' must be a non-empty string, got True."),
        ({"_id": "d9", "title": "t"}, "field 'text' must be a string, got None."),
        ({"_id": "d9", "title": 5, "text": "x"}, "field 'title' must be a string, got 5."),
    ]:
        folder = beir_folder(tmp_path, corpus=[CORPUS[0], record])
        refuse(folder, f"{folder}/corpus.jsonl:2: {message}")
    folder = beir_folder(tmp_path, queries=[QUERIES[0], {"_id": "q2", "text": ["a"]}])
    refuse(folder, f"{folder}/queries.jsonl:2: field 'text' must be a string, got ['a'].")


def test_beir_not_utf8_names_file_and_line(tmp_path):
    folder = beir_folder(tmp_path)
    with open(os.path.join(folder, "queries.jsonl"), "ab") as f:
        f.write(b'{"_id": "q9", "text": "caf\xe9"}\n')
    refuse(folder, f"{folder}/queries.jsonl:4: not valid UTF-8 (byte 0xe9 at column 27).")


def test_beir_duplicate_ids(tmp_path):
    folder = beir_folder(tmp_path, corpus=[*CORPUS, {"_id": "d2", "text": "again"}])
    refuse(folder, f"{folder}/corpus.jsonl:5: duplicate _id 'd2'.")
    folder = beir_folder(tmp_path, queries=[*QUERIES, {"_id": "q1", "text": "again"}])
    refuse(folder, f"{folder}/queries.jsonl:4: duplicate _id 'q1'.")
    folder = beir_folder(tmp_path, qrels={"test": [*TEST_QRELS, "q1\td1\t2"]})
    refuse(
        folder,
        f"{folder}/qrels/test.tsv:6: duplicate judgement of query 'q1' and passage 'd1' (first at line 3).",
    )


def test_beir_qrels_lines_and_header(tmp_path):
    for line in ["q1\td1", "q1\td1\t1\textra", "q1\td1\t1.0", "q1\td1\thigh", "\td1\t1", "q1 d1 1"]:
        folder = beir_folder(tmp_path, qrels={"test": ["q2\td2\t1", line]})
        refuse(
            folder,
            f"{folder}/qrels/test.tsv:3: expected query-id<TAB>corpus-id<TAB>integer score, got {line!r}.",
        )
    folder = beir_folder(tmp_path)
    write_text(os.path.join(folder, "qrels", "test.tsv"), TEST_QRELS)
    refuse(
        folder,
        f"{folder}/qrels/test.tsv:1: expected the header 'query-id\\tcorpus-id\\tscore' (tab-separated), got 'q2\\td2\\t2'.",
    )
    write_text(os.path.join(folder, "qrels", "test.tsv"), [HEADER])
    refuse(
        folder,
        f"{folder}/qrels/test.tsv: no examples (expected judgements after the header 'query-id\\tcorpus-id\\tscore').",
    )
    write_text(os.path.join(folder, "qrels", "test.tsv"), [])
    refuse(
        folder,
        f"{folder}/qrels/test.tsv:1: expected the header 'query-id\\tcorpus-id\\tscore' (tab-separated), got ''.",
    )


def test_beir_qrels_ids_must_exist(tmp_path):
    folder = beir_folder(tmp_path, qrels={"test": [*TEST_QRELS, "q7\td1\t1"]})
    refuse(folder, f"{folder}/qrels/test.tsv:6: query id 'q7' is not in {folder}/queries.jsonl.")
    folder = beir_folder(tmp_path, qrels={"test": ["q1\td1\t1", "q1\td9\t1"]})
    refuse(
        folder,
        f"{folder}/qrels/test.tsv:3: passage id 'd9' is not in {folder}/corpus.jsonl (load with "
        "keep_missing_passages=True to keep it as an unretrievable relevant passage, as BEIR does).",
    )


def test_beir_keep_missing_passages_warns_once(tmp_path, caplog):
    """ArguAna's test qrels name a passage its corpus lacks (beir issue #101): kept, as BEIR's nDCG counts it."""
    folder = beir_folder(tmp_path, qrels={"test": ["q1\td1\t1", "q1\td9\t1", "q2\td8\t2"]})
    with caplog.at_level(logging.WARNING, logger="tasks.retrieval_data"):
        split = load_beir(folder, "test", keep_missing_passages=True)
    assert split.qrels == {"q1": {"d1": 1, "d9": 1}, "q2": {"d8": 2}}
    assert [r.getMessage() for r in caplog.records] == [
        f"{folder}/qrels/test.tsv: kept 2 judgement(s) of passages not in {folder}/corpus.jsonl (first: line 3, "
        "'d9'); they count as relevant passages that cannot be retrieved, as in BEIR."
    ]


def test_beir_query_without_relevant_passage(tmp_path):
    folder = beir_folder(tmp_path, qrels={"test": ["q2\td2\t1", "q1\td1\t0", "q1\td2\t-1"]})
    refuse(
        folder, f"{folder}/qrels/test.tsv:3: query 'q1' has no relevant passage (score > 0) in this split."
    )


# ------------------------------------------------------------------------------------------------ DPR


def ctx(title, text, **extra):
    return {"title": title, "text": text, "score": 1.5, "title_score": 0, **extra}


NQ = [
    {
        "question": "who wrote hamlet?",
        "answers": ["Shakespeare", "William Shakespeare"],
        "positive_ctxs": [
            ctx("Hamlet", "Hamlet is by Shakespeare.", passage_id="11"),
            ctx("Bard", "He wrote it."),
        ],
        "negative_ctxs": [ctx("Fox", "The fox.")],
        "hard_negative_ctxs": [ctx("Hamlet (film)", "A 1996 film."), ctx("Ophelia", "A character.")],
    },
    {
        "question": "capital of france",
        "answers": [],
        "positive_ctxs": [ctx("", "Paris.", psg_id="7")],
        "negative_ctxs": [],
        "hard_negative_ctxs": [],
    },
]
NO_POSITIVE = {
    "question": "q?",
    "answers": ["a"],
    "positive_ctxs": [],
    "negative_ctxs": [],
    "hard_negative_ctxs": [],
}

HAMLET = DprExample(
    question="who wrote hamlet?",
    answers=("Shakespeare", "William Shakespeare"),
    positives=(("Hamlet", "Hamlet is by Shakespeare."), ("Bard", "He wrote it.")),
    negatives=(("Fox", "The fox."),),
    hard_negatives=(("Hamlet (film)", "A 1996 film."), ("Ophelia", "A character.")),
)
PARIS = DprExample("capital of france", (), (("", "Paris."),), (), ())


def write_json(path, data, **style):
    write_text(str(path), json.dumps(data, indent=1).split("\n"), **style)
    return str(path)


def test_dpr_exact_values(tmp_path):
    path = write_json(tmp_path / "nq-train.json", NQ)
    got = load_dpr(path)
    assert got == [replace(HAMLET, source=path), replace(PARIS, source=path)]


@pytest.mark.parametrize("style", [{"bom": True}, {"crlf": True}, {"bom": True, "crlf": True}])
def test_dpr_bom_and_crlf_read_the_same(tmp_path, style):
    path = write_json(tmp_path / "nq-train.json", NQ, **style)
    assert [replace(e, source="") for e in load_dpr(path)] == [HAMLET, PARIS]


def test_dpr_globs_sorted_and_deduplicated(tmp_path):
    b = write_json(tmp_path / "b-train.json", [NQ[1]])
    a = write_json(tmp_path / "a-train.json", [NQ[0]])
    write_json(tmp_path / "a-dev.json", [NQ[1]])
    got = load_dpr([str(tmp_path / "*-train.json"), a])
    assert [(e.question, e.source) for e in got] == [("who wrote hamlet?", a), ("capital of france", b)]
    assert expand_paths([b, str(tmp_path / "a-*.json")]) == [b, str(tmp_path / "a-dev.json"), a]


def test_dpr_unmatched_glob_and_no_path(tmp_path):
    pattern = str(tmp_path / "*-train.json")
    with pytest.raises(DataError) as err:
        load_dpr(pattern)
    assert str(err.value) == (
        f"{pattern}: no file matches; expected DPR retriever JSON files such as data/retriever/nq-train.json."
    )
    with pytest.raises(DataError, match="^no DPR retriever file given"):
        load_dpr([])


def test_dpr_without_positive_refused_with_count(tmp_path):
    path = write_json(tmp_path / "trivia-train.json", [NQ[0], NO_POSITIVE, NQ[1], NO_POSITIVE])
    with pytest.raises(DataError) as err:
        load_dpr(path)
    assert str(err.value) == (
        f"{path}: example 1: no positive passage (positive_ctxs is empty); 2 of 4 questions in this file have "
        "none (load with skip_without_positive=True to drop them, as the original does)."
    )


def test_dpr_without_positive_skipped_with_one_warning(tmp_path, caplog):
    a = write_json(tmp_path / "a-train.json", [NO_POSITIVE, NQ[0], NO_POSITIVE])
    b = write_json(tmp_path / "b-train.json", [NQ[1], NO_POSITIVE])
    with caplog.at_level(logging.WARNING, logger="tasks.retrieval_data"):
        got = load_dpr(str(tmp_path / "*.json"), skip_without_positive=True)
    assert [e.question for e in got] == ["who wrote hamlet?", "capital of france"]
    assert [r.getMessage() for r in caplog.records] == [
        f"dropped 3 DPR question(s) without a positive passage, as the original does ({a}: 2, {b}: 1)."
    ]
    only = write_json(tmp_path / "c.json", [NO_POSITIVE])
    with pytest.raises(DataError, match=f"^{only}: no examples"):
        load_dpr(only, skip_without_positive=True)


def test_dpr_malformed(tmp_path):
    layout = (
        '{"question", "answers", "positive_ctxs": [{"title", "text"}], "negative_ctxs": [...], '
        '"hard_negative_ctxs": [...]}'
    )
    cases = [
        ({"questions": NQ}, "{path}: expected a JSON list of questions [" + layout + "], got dict."),
        ([NQ[0], "q"], "{path}: example 1: expected an object " + layout + ", got str."),
        (
            [{k: v for k, v in NQ[0].items() if k != "hard_negative_ctxs"}],
            "{path}: example 0: missing field(s) hard_negative_ctxs; expected " + layout + ".",
        ),
        ([{**NQ[0], "question": 7}], "{path}: example 0: field 'question' must be a string, got 7."),
        (
            [{**NQ[0], "answers": "x"}],
            "{path}: example 0: field 'answers' must be a list of strings, got 'x'.",
        ),
        (
            [NQ[1], {**NQ[0], "negative_ctxs": {"title": "t"}}],
            "{path}: example 1: field 'negative_ctxs' must be a list of {'title', 'text'}, got {'title': 't'}.",
        ),
        (
            [{**NQ[0], "hard_negative_ctxs": [ctx("a", "b"), "x"]}],
            "{path}: example 0: hard_negative_ctxs[1] must be an object {'title', 'text'}, got 'x'.",
        ),
        (
            [{**NQ[0], "positive_ctxs": [{"text": "t"}]}],
            "{path}: example 0: positive_ctxs[0].title must be a string, got None; expected {'title', 'text'}.",
        ),
        (
            [{**NQ[0], "positive_ctxs": [{"title": "t", "text": 3}]}],
            "{path}: example 0: positive_ctxs[0].text must be a string, got 3; expected {'title', 'text'}.",
        ),
        ([], "{path}: no examples (expected a JSON list of questions [" + layout + "])."),
    ]
    for data, message in cases:
        path = write_json(tmp_path / "bad.json", data)
        with pytest.raises(DataError) as err:
            load_dpr(path)
        assert str(err.value) == message.replace("{path}", path)


def test_dpr_syntax_error_and_bad_byte_name_the_line(tmp_path):
    path = tmp_path / "bad.json"
    write_text(str(path), ["[", ' {"question": "q",', " oops", "]"])
    with pytest.raises(DataError, match=rf"^{path}:3: not valid JSON \("):
        load_dpr(str(path))
    with open(path, "wb") as f:
        f.write(b'[\n {"question": "caf\xe9"}\n]\n')
    with pytest.raises(DataError, match=rf"^{path}:2: not valid UTF-8 \(byte 0xe9 at column 19\)\.$"):
        load_dpr(str(path))
