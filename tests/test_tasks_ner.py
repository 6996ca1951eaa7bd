"""NER tasks: official-format fixtures -> load -> preprocess (Dataset.map, as run.py) -> seqeval metric."""

import json
import os

import datasets
import numpy as np
import pytest

from arguments import DataTrainingArguments
from fixtures import REAL_DATA, needs_real
from tasks import ner, tagging
from tasks.registry import DataError
from tiny import bert_tokenizer, roberta_tokenizer

# CoNLL-2003 official layout (IOB2 NER column, as the widely redistributed copy), two documents.
CONLL03_IOB2 = """-DOCSTART- -X- -X- O

EU NNP I-NP B-ORG
rejects VBZ I-VP O
German JJ I-NP B-MISC
call NN I-NP O
. . O O

Peter NNP I-NP B-PER
Zwingmann NNP I-NP I-PER
met VBD I-VP O
Werner NNP I-NP B-PER
Anna NNP I-NP B-PER
in IN I-PP O
Brussels NNP I-NP B-LOC
1996-08-22 CD I-NP O

-DOCSTART- -X- -X- O

BRUSSELS NNP I-NP B-LOC
"""
# The same in IOB1 (the original eng.* release): I- everywhere except between two adjacent same-type chunks.
CONLL03_IOB1 = (
    CONLL03_IOB2.replace("B-ORG", "I-ORG")
    .replace("B-MISC", "I-MISC")
    .replace("Peter NNP I-NP B-PER", "Peter NNP I-NP I-PER")
    .replace("Werner NNP I-NP B-PER", "Werner NNP I-NP I-PER")
    .replace("B-LOC", "I-LOC")
)
SENT2_TAGS = ["B-PER", "I-PER", "O", "B-PER", "B-PER", "O", "B-LOC", "O"]


def data_args(tmp_path, name="conll2003", **kw):
    kw.setdefault("pad_to_max_length", False)  # dynamic padding (the token-classification collator pads)
    return DataTrainingArguments(task_name="ner", dataset_name=name, data_dir=str(tmp_path), **kw)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def to_features(task, ds, tokenizer, args):
    return ds.map(lambda b: task.preprocess(b, tokenizer, args), batched=True, remove_columns=ds.column_names)


def label_ids(task, names: str) -> list[int]:
    return [task.label_list.index(n) if n != "-" else -100 for n in names.split()]


def one_hot_logits(label_rows, num_labels, overrides=None):
    """Logits whose argmax is the gold label (0 on -100 positions), padded with -100 as the Trainer does."""
    width = max(len(r) for r in label_rows)
    out = np.full((len(label_rows), width, num_labels), -100.0)
    for i, row in enumerate(label_rows):
        out[i, : len(row)] = np.eye(num_labels)[[max(lab, 0) for lab in row]]
    for (i, pos), label in (overrides or {}).items():
        out[i, pos] = np.eye(num_labels)[label]
    return out


@pytest.fixture
def conll03(tmp_path):
    for split in ("train", "valid", "test"):
        write(str(tmp_path / "CoNLL03" / f"{split}.txt"), CONLL03_IOB2)
    return tmp_path


def test_registered_rows():
    assert set(ner.TASKS) == {"conll2003", "conll2004", "ontonotes"}
    assert ner.TASKS["conll2003"].label_list == tuple(
        "O B-PER I-PER B-ORG I-ORG B-LOC I-LOC B-MISC I-MISC".split()
    )
    assert len(ner.TASKS["conll2004"].label_list) == 9 and len(ner.TASKS["ontonotes"].label_list) == 37
    for task in ner.TASKS.values():
        assert (task.family, task.main_metric, task.hints.schedule) == ("ner", "f1", "exponential")
        assert task.hints.collator == "token_classification" and task.hints.pretokenized
    assert ner.TASKS["conll2003"].hub_id == "eriktks/conll2003" and ner.TASKS["conll2004"].hub_id is None


def test_conll2003_load_splits_sentences_and_docstart(conll03):
    raw = ner.TASKS["conll2003"].load(data_args(conll03), ["train", "validation", "test"])
    assert set(raw) == {"train", "validation", "test"}
    train = raw["train"]
    assert train.column_names == ["id", "tokens", "ner_tags"] and len(train) == 3
    assert train[1]["tokens"][:2] == ["Peter", "Zwingmann"] and train[1]["ner_tags"] == SENT2_TAGS
    # the last sentence needs no trailing blank line
    assert train[2] == {"id": "2", "tokens": ["BRUSSELS"], "ner_tags": ["B-LOC"]}


def test_iob1_release_files_normalise_to_iob2(tmp_path, conll03):
    for name in ("eng.train", "eng.testa"):
        write(str(tmp_path / "iob1" / name), CONLL03_IOB1)
    iob1 = ner.TASKS["conll2003"].load(data_args(tmp_path / "iob1"), ["train", "validation"])["train"]
    iob2 = ner.TASKS["conll2003"].load(data_args(conll03), ["train"])["train"]
    assert iob1["ner_tags"] == iob2["ner_tags"]
    # the metric is the same with either file as gold, for a prediction that merges "Werner Anna"
    task, args = ner.TASKS["conll2003"], data_args(conll03)
    feats = to_features(task, iob2, bert_tokenizer(), args)
    # "Anna" (sub-token 7 of sentence 1) predicted I-PER: it continues Werner's chunk
    wrong = {(1, 7): task.label_list.index("I-PER")}
    logits = one_hot_logits(feats["labels"], 9, wrong)
    m1 = task.compute_metrics(logits, feats, iob1, args)
    m2 = task.compute_metrics(logits, feats, iob2, args)
    # gold: 7 chunks (ORG MISC | PER PER PER LOC | LOC); predicted: 6, of which "Werner Anna" is wrong
    assert m1 == m2
    assert m1["precision"] == pytest.approx(5 / 6) and m1["recall"] == pytest.approx(5 / 7)
    assert m1["f1"] == pytest.approx(2 * (5 / 6) * (5 / 7) / (5 / 6 + 5 / 7))
    assert m1["accuracy"] == pytest.approx(13 / 14)


def test_bert_alignment_first_subtoken_gets_the_label(conll03):
    task, args = ner.TASKS["conll2003"], data_args(conll03)
    feats = to_features(task, task.load(args, ["train"])["train"], bert_tokenizer(), args)
    assert feats.column_names == ["input_ids", "token_type_ids", "attention_mask", "labels"]
    tokens = bert_tokenizer().convert_ids_to_tokens(feats[1]["input_ids"])
    assert tokens == "[CLS] peter z ##wing ##mann met werner anna in brussels 1996 - 08 - 22 [SEP]".split()
    # -: no label (special token or continuation sub-token)
    assert feats[1]["labels"] == label_ids(task, "- B-PER I-PER - - O B-PER B-PER O B-LOC O - - - - -")


def test_roberta_alignment_with_prefix_space(conll03):
    task, args = ner.TASKS["conll2003"], data_args(conll03)
    feats = to_features(task, task.load(args, ["train"])["train"], roberta_tokenizer(), args)
    assert feats.column_names == ["input_ids", "attention_mask", "labels"]
    tokens = roberta_tokenizer().convert_ids_to_tokens(feats[0]["input_ids"])
    assert tokens == ["<s>", "ĠEU", "Ġrej", "ect", "s", "ĠGer", "man", "Ġcal", "l", "Ġ.", "</s>"]
    assert feats[0]["labels"] == label_ids(task, "- B-ORG O - - B-MISC - O - O -")


@pytest.mark.parametrize("tokenizer,recall", [(bert_tokenizer, 5 / 7), (roberta_tokenizer, 4 / 7)])
def test_truncation_keeps_labels_aligned_and_scores_cut_words_as_o(conll03, tokenizer, recall):
    task, args = ner.TASKS["conll2003"], data_args(conll03, max_seq_length=8)
    raw = task.load(args, ["train"])["train"]
    feats = to_features(task, raw, tokenizer(), args)
    for i, row in enumerate(feats):
        assert len(row["input_ids"]) <= 8 and len(row["labels"]) == len(row["input_ids"])
        enc = tokenizer()(raw[i]["tokens"], is_split_into_words=True, truncation=True, max_length=8)
        kept = sorted({w for w in enc.word_ids() if w is not None})
        gold_ids = [task.label_list.index(t) for t in raw[i]["ner_tags"]]
        assert [x for x in row["labels"] if x != -100] == [gold_ids[w] for w in kept]
    # perfect predictions on what the model saw: every truncated gold entity is a miss, never a hit
    metrics = task.compute_metrics(one_hot_logits(feats["labels"], 9), feats, raw, args)
    # BERT (8 tokens) loses "Anna" and "Brussels" of sentence 1; RoBERTa's longer pieces also lose "Werner"
    assert metrics["precision"] == 1.0 and metrics["recall"] == pytest.approx(recall)
    assert task.compute_metrics(one_hot_logits(feats["labels"], 9), feats, None, args)["f1"] == 1.0


def test_pad_to_max_length_pads_labels_with_ignore(conll03):
    task, args = ner.TASKS["conll2003"], data_args(conll03, max_seq_length=24, pad_to_max_length=True)
    feats = to_features(task, task.load(args, ["train"])["train"], bert_tokenizer(), args)
    assert {len(r) for r in feats["input_ids"]} == {24} and {len(r) for r in feats["labels"]} == {24}
    assert feats[2]["labels"][3:] == [-100] * 21


def test_word_without_subtokens_becomes_unk(tmp_path):
    task, args = ner.TASKS["conll2003"], data_args(tmp_path)
    raw = datasets.Dataset.from_dict(
        {"id": ["0"], "tokens": [["EU", "\u200b", "call"]], "ner_tags": [["B-ORG", "O", "O"]]}
    )
    row = to_features(task, raw, bert_tokenizer(), args)[0]
    assert bert_tokenizer().convert_ids_to_tokens(row["input_ids"]) == [
        "[CLS]",
        "eu",
        "[UNK]",
        "call",
        "[SEP]",
    ]
    assert row["labels"] == [-100, 3, 0, 0, -100]


def test_conll2004_spert_json_bilou_and_entities_become_bio(tmp_path):
    tokens = "John Smith of Acme Corp Inc .".split()
    tablert = [{"tokens": tokens, "tags": "B-Peop L-Peop O B-Org I-Org L-Org U-Other".split()}]
    entities = [("Peop", 0, 2), ("Org", 3, 6), ("Other", 6, 7)]  # SpERT: end exclusive
    spert = [{"tokens": tokens, "entities": [{"type": t, "start": a, "end": b} for t, a, b in entities]}]
    write(str(tmp_path / "conll2004" / "conll04_train.json"), json.dumps(tablert))
    write(str(tmp_path / "conll2004" / "conll04_dev.json"), json.dumps(spert))
    raw = ner.TASKS["conll2004"].load(data_args(tmp_path, "conll2004"), ["train", "validation"])
    bio = "B-Peop I-Peop O B-Org I-Org I-Org B-Other".split()
    assert raw["train"][0]["ner_tags"] == bio and raw["validation"][0]["ner_tags"] == bio


def test_conll2004_original_column_files_win_over_json(tmp_path):
    write(str(tmp_path / "CoNLL04" / "train.txt"), "John B-Peop\nSmith I-Peop\nran O\n\nParis B-Loc\n")
    write(str(tmp_path / "CoNLL04" / "conll04_train.json"), "[]")
    train = ner.TASKS["conll2004"].load(data_args(tmp_path, "conll2004"), ["train"])["train"]
    assert train["ner_tags"] == [["B-Peop", "I-Peop", "O"], ["B-Loc"]]


def test_ontonotes_tab_columns(tmp_path):
    lines = [
        "1\tBarack\t_\tNNP\tB-PERSON",
        "2\tObama\t_\tNNP\tI-PERSON",
        "3\tvisited\t_\tVBD\tO",
        "",
        "1\tChina\t_\tNNP\tB-GPE",
    ]
    for split in ("train", "dev"):
        write(str(tmp_path / "ontoNotes" / f"{split}.sd.conllx"), "\n".join(lines))  # no final newline
    task = ner.TASKS["ontonotes"]
    raw = task.load(data_args(tmp_path, "ontonotes"), ["train", "validation"])
    assert raw["validation"]["tokens"] == [["Barack", "Obama", "visited"], ["China"]]
    assert raw["validation"]["ner_tags"] == [["B-PERSON", "I-PERSON", "O"], ["B-GPE"]]
    assert task.label_list[-1] == "O" and "B-WORK_OF_ART" in task.label_list


def test_malformed_line_names_file_and_line(tmp_path):
    write(str(tmp_path / "train.txt"), "EU NNP I-NP B-ORG\nrejects VBZ\n")
    with pytest.raises(DataError, match=r"train\.txt:2: expected at least 4"):
        ner.TASKS["conll2003"].load(data_args(tmp_path), ["train"])


def test_unknown_tag_is_named_with_its_line(tmp_path):
    write(str(tmp_path / "train.txt"), "EU NNP I-NP B-ORG\n\nrejects VBZ I-VP B-ANIMAL\n")
    with pytest.raises(DataError, match=r"train\.txt:3: unknown tag 'B-ANIMAL'"):
        ner.TASKS["conll2003"].load(data_args(tmp_path), ["train"])
    write(str(tmp_path / "c04" / "conll04_train.json"), json.dumps([{"tokens": ["a"], "tags": ["U-Animal"]}]))
    with pytest.raises(DataError, match=r"conll04_train\.json: sentence 0, token 0: unknown tag 'U-Animal'"):
        ner.TASKS["conll2004"].load(data_args(tmp_path / "c04", "conll2004"), ["train"])


def test_missing_file_names_the_layout(tmp_path):
    with pytest.raises(DataError, match=r"CoNLL03/valid\.txt.*eng\.testa"):
        ner.TASKS["conll2003"].load(data_args(tmp_path), ["validation"])
    with pytest.raises(DataError, match=r"conll04_dev\.json"):
        ner.TASKS["conll2004"].load(data_args(tmp_path, "conll2004"), ["validation"])


def test_conll2004_without_local_files_says_data_dir():
    args = DataTrainingArguments(task_name="ner", dataset_name="conll2004")
    with pytest.raises(DataError, match="no Hugging Face Hub copy.*--data_dir"):
        ner.TASKS["conll2004"].load(args, ["train"])


def test_hub_fallback_reads_the_parquet_export(monkeypatch):
    calls = []
    strings = datasets.List(datasets.Value("string"))
    label = datasets.ClassLabel(names=list(ner.CONLL2003_LABELS))
    feats = datasets.Features(
        {"id": datasets.Value("string"), "tokens": strings, "ner_tags": datasets.List(label)}
    )

    def fake_load_dataset(path, name=None, split=None, revision=None, **kw):
        calls.append((path, split, revision))
        if path == "tner/ontonotes5":
            return datasets.Dataset.from_dict({"tokens": [["Obama", "spoke"]], "tags": [[4, 0]]})
        return datasets.Dataset.from_dict(
            {"id": ["7"], "tokens": [["EU", "rejects"]], "ner_tags": [[3, 0]]}, features=feats
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    no_files = DataTrainingArguments(task_name="ner", dataset_name="conll2003")
    raw = ner.TASKS["conll2003"].load(no_files, ["validation"])
    assert calls == [("eriktks/conll2003", "validation", "refs/convert/parquet")]
    assert raw["validation"][0] == {"id": "7", "tokens": ["EU", "rejects"], "ner_tags": ["B-ORG", "O"]}
    onto = ner.TASKS["ontonotes"].load(no_files, ["train"])["train"][0]
    assert onto["ner_tags"] == ["B-PERSON", "O"]  # tner's own id order, mapped back to names

    def offline(*a, **kw):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="--data_dir"):
        ner.TASKS["conll2003"].load(no_files, ["train"])


def test_seqeval_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    scores = tagging.seqeval_scores(gold, pred)  # 2 of 3 chunks right each way; 5 of 6 tokens
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "accuracy": 5 / 6})


def test_seqeval_is_the_conlleval_mode_not_strict_iob2():
    """An ill-formed chunk (I- with no B-), as a model early in training writes: conlleval (seqeval's default mode,
    the original's) reads I-PER I-PER as one PER chunk, so both chunks are right; strict IOB2 would drop the PER
    chunk (P 1/1, R 1/2, F1 2/3). Tokens: 3 of 4 tags equal."""
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["I-PER", "I-PER", "O", "B-LOC"]]
    scores = tagging.seqeval_scores(gold, pred)
    assert scores == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0, "accuracy": 3 / 4})


def test_predictions_to_records(conll03):
    task, args = ner.TASKS["conll2003"], data_args(conll03)
    raw = task.load(args, ["test"])["test"]
    feats = to_features(task, raw, bert_tokenizer(), args)
    records = task.predictions_to_records(one_hot_logits(feats["labels"], 9), feats, raw, args)
    assert records[1] == {"tokens": raw[1]["tokens"], "tags": SENT2_TAGS}
    json.dumps(records)


def test_task_needs_fast_tokenizer(conll03):
    class Slow:
        is_fast = False

    with pytest.raises(ValueError, match="fast tokenizer"):
        ner.TASKS["conll2003"].preprocess(
            {"tokens": [["a"]], "ner_tags": [["O"]]}, Slow(), data_args(conll03)
        )


@needs_real("conll2003/train.txt", "conll2003/valid.txt", "conll2003/test.txt")
def test_real_conll2003_counts():
    args = data_args(REAL_DATA)
    c03 = ner.TASKS["conll2003"].load(args, ["train", "validation", "test"])
    assert [len(c03[s]) for s in ("train", "validation", "test")] == [14041, 3250, 3453]
    assert sum(t.startswith("B-") for tags in c03["train"]["ner_tags"] for t in tags) == 23499  # data README


@needs_real("conll2004/conll04_train.json", "conll2004/conll04_dev.json", "conll2004/conll04_test.json")
def test_real_conll2004_counts():
    c04 = ner.TASKS["conll2004"].load(data_args(REAL_DATA, "conll2004"), ["train", "validation", "test"])
    assert [len(c04[s]) for s in ("train", "validation", "test")] == [922, 231, 288]
    # 3377 entities in train = the JSON's U- + B- tags (805 + 304 + 233 + 183 + 783 + 414 + 383 + 272)
    assert sum(t.startswith("B-") for tags in c04["train"]["ner_tags"] for t in tags) == 3377
