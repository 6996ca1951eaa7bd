"""Your own data (tasks/custom.py): --dataset_name custom with --train_file/--validation_file/--test_file, for tagging
(--task_name ner) and sentence (pair) classification or regression (--task_name glue). The label list comes from the
training file, sizes the head, is recorded in args.json and the checkpoint, and predict.py / the Predictor rebuild
the task from that record. End to end on the tiny BERT of conftest; metrics recomputed by hand."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file, save_file

import predict
import run
from model.checkpoint import read_meta
from model.config import PTuningError
from model.loading import load_config
from tasks import DataError, get_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMMON = ["--prefix", "--pre_seq_len", "3", "--num_train_epochs", "2", "--per_device_train_batch_size", "4",
          "--per_device_eval_batch_size", "4", "--learning_rate", "5e-2", "--eval_strategy", "epoch",
          "--save_strategy", "epoch", "--report_to", "none", "--disable_tqdm", "true", "--seed", "5",
          "--max_seq_length", "32"]  # fmt: skip

SENTENCES = [  # (word, tag) per line of a 2-column file: tags of the user's own, unknown to every registered dataset
    [("Take", "O"), ("aspirin", "B-DRUG"), ("daily", "O")],
    [("Give", "O"), ("ibuprofen", "B-DRUG"), ("sodium", "I-DRUG"), ("twice", "O")],
    [("Use", "O"), ("10", "B-DOSE"), ("mg", "I-DOSE"), ("of", "O"), ("codeine", "B-DRUG")],
    [("No", "O"), ("drugs", "O"), ("today", "O")],
]
PAIRS = [("A man plays a guitar.", "A man plays music.", "yes"), ("The cat sleeps.", "A dog barks.", "no"),
         ("Paris is in France.", "France has Paris.", "yes"), ("It is raining.", "The sun is out.", "no")]  # fmt: skip


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def columns(sentences, copies=1):
    """A 2-column CoNLL-style file (word tag), a -DOCSTART- line first, a blank line after each sentence."""
    blocks = ["\n".join(f"{word} {tag}" for word, tag in s) for s in sentences * copies]
    return "-DOCSTART- O\n\n" + "\n\n".join(blocks) + "\n"


def jsonl(rows):
    return "".join(json.dumps(row) + "\n" for row in rows)


def train_run(model_dir, tmp_path, family, train, dev, test, *extra):
    out = str(tmp_path / "out")
    argv = ["--model_name_or_path", model_dir, "--task_name", family, "--dataset_name", "custom",
            "--train_file", train, "--validation_file", dev, "--test_file", test, "--output_dir", out,
            "--do_train", "--do_eval", "--do_predict", *COMMON, *extra]  # fmt: skip
    return run.main(argv), out


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def last_epoch(out, tmp_path):
    """A checkpoint folder holding the run's last-epoch weights (the run folder's top level): what run.py
    --do_predict predicts with, whereas the run folder itself stands for best_model/ (the best dev epoch)."""
    folder = tmp_path / "last-epoch"
    folder.mkdir()
    shutil.copy(os.path.join(out, "model.safetensors"), folder / "model.safetensors")
    return str(folder)


def predict_file(model_dir, checkpoint, records, tmp_path):
    path = write(tmp_path / "in.jsonl", jsonl(records))
    out = str(tmp_path / "predicted.jsonl")
    results = predict.main(["--model_name_or_path", model_dir, "--ptuning_checkpoint", f"own={checkpoint}",
                            "--input", path, "--output", out])  # fmt: skip
    return results, read_jsonl(out)


# ------------------------------------------------------------------------------------------------------------
# Tagging


def test_own_ner_tags_train_and_predict_with_the_same_tags(tiny_bert, tmp_path):
    """A 2-column training file with B-DRUG/I-DRUG/B-DOSE/I-DOSE tags, a jsonl dev file, a column test file."""
    train = write(tmp_path / "own.txt", columns(SENTENCES, copies=3))
    dev = write(
        tmp_path / "dev.jsonl",
        jsonl({"tokens": [w for w, _ in s], "tags": [t for _, t in s]} for s in SENTENCES),
    )
    test = write(tmp_path / "test.txt", columns(SENTENCES[:2]))
    results, out = train_run(tiny_bert, tmp_path, "ner", train, dev, test)

    labels = ["O", "B-DOSE", "I-DOSE", "B-DRUG", "I-DRUG"]  # O, then B-/I- per entity type, types sorted
    assert read_json(os.path.join(out, "args.json"))["data_args"]["own_data"] == {"labels": labels}
    saved = load_file(os.path.join(out, "best_model", "model.safetensors"))
    assert saved["classifier.weight"].shape == (5, 32) and saved["classifier.bias"].shape == (5,)
    assert results["trainable_params"] == 3 * 2 * 2 * 32 + 32 * 5 + 5  # prefix + the 5-tag classifier
    record = read_meta(os.path.join(out, "best_model"))["task"]
    assert (record["family"], record["dataset"], record["labels"]) == ("ner", "custom", labels)
    assert record["own_data"] == {"labels": labels}
    config = load_config(
        tiny_bert, get_task("ner", "custom").from_record(record)
    )  # as run.py and serving load it
    assert config.num_labels == 5 and config.id2label == dict(enumerate(labels))
    assert {"eval_f1", "eval_precision", "eval_recall", "eval_accuracy", "test_f1"} <= set(results)

    rows = read_jsonl(os.path.join(out, "predict_results_test.jsonl"))
    assert [r["tokens"] for r in rows] == [[w for w, _ in s] for s in SENTENCES[:2]]
    assert all(set(r["tags"]) <= set(labels) for r in rows)
    # predict.py rebuilds the task from the checkpoint's record: the same tags as run.py --do_predict
    checkpoint = last_epoch(out, tmp_path)
    results, lines = predict_file(tiny_bert, checkpoint, [{"tokens": r["tokens"]} for r in rows], tmp_path)
    assert [line["prediction"] for line in lines] == [r["tags"] for r in rows]
    assert [len(r["scores"]) for r in results] == [3, 4]


def test_the_tag_set_is_read_from_the_training_file_in_iob2(tmp_path):
    """IOB1 (an entity starting with I-) becomes IOB2; a type seen only as B- still gets its I- tag; jsonl reads."""
    train = write(tmp_path / "t.jsonl", jsonl([
        {"tokens": ["Take", "big", "aspirin"], "tags": ["O", "I-DRUG", "I-DRUG"]},
        {"tokens": ["at", "noon"], "ner_tags": ["O", "B-TIME"]}]))  # fmt: skip
    args = argparse_like(train_file=train, validation_file=train)
    task = get_task("ner", "custom").resolve(args)
    assert task.label_list == ("O", "B-DRUG", "I-DRUG", "B-TIME", "I-TIME") and task.num_labels == 5
    assert task.main_metric == "f1" and task.prediction.key == "tags"
    rows = task.load(args, ["train"])["train"]
    assert rows["ner_tags"] == [["O", "B-DRUG", "I-DRUG"], ["O", "B-TIME"]] and rows["id"] == ["0", "1"]


def test_seqeval_on_a_tiny_prediction_by_hand(tmp_path):
    """Gold DRUG(1), DRUG(1-2), DOSE(0); predicted DRUG(1), DRUG(1) only, DOSE(0): 2 of 3 predicted entities
    right, 2 of 3 gold found -> precision = recall = f1 = 2/3; 8 of 9 tokens right."""
    task = get_task("ner", "custom").resolve(
        argparse_like(train_file=write(tmp_path / "t.txt", columns(SENTENCES)))
    )
    ids = {tag: i for i, tag in enumerate(task.label_list)}
    gold = [["O", "B-DRUG", "O"], ["O", "B-DRUG", "I-DRUG", "O"], ["B-DOSE", "O"]]
    pred = [["O", "B-DRUG", "O"], ["O", "B-DRUG", "O", "O"], ["B-DOSE", "O"]]
    logits = np.full((3, 4, 5), -1.0)
    for i, tags in enumerate(pred):
        for j, tag in enumerate(tags):
            logits[i, j, ids[tag]] = 1.0
    features = {"labels": [[ids[t] for t in tags] for tags in gold]}
    examples = {"tokens": [["w"] * len(t) for t in gold], "ner_tags": gold}
    scores = task.compute_metrics(logits, features, examples, None)
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "accuracy": 8 / 9})


def test_an_unseen_dev_tag_is_one_line_naming_file_line_and_tag(tiny_bert, tmp_path):
    train = write(tmp_path / "own.txt", columns(SENTENCES[:2]))  # DRUG only
    dev = write(
        tmp_path / "dev.txt", columns(SENTENCES[2:3])
    )  # 10 B-DOSE on line 4 (after -DOCSTART- and a blank)
    argv = [sys.executable, "run.py", "--model_name_or_path", tiny_bert, "--task_name", "ner", "--dataset_name",
            "custom", "--train_file", train, "--validation_file", dev, "--output_dir", str(tmp_path / "out"),
            "--do_train", "--do_eval", *COMMON]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.strip() == (
        f"error: {dev}:4: tag 'B-DOSE' is not in the training file's tag set (O, B-DRUG, I-DRUG): its type never "
        f"occurs in --train_file {train}."
    )
    assert not os.path.exists(tmp_path / "out" / "args.json")  # refused before the run folder was written


@pytest.mark.parametrize(
    "text,message",
    [
        ("a O\nb PER\n", "own.txt:2: tag 'PER' is not O, B-<type> or I-<type>"),
        ("a O\nb E-PER\n", "own.txt:2: tag 'E-PER' is not O, B-<type> or I-<type>"),
        ("a O\nb O\n", "own.txt: every tag is O: the training file needs entities"),
        ("a O\nb\n", "own.txt:2: expected at least 2 space-separated columns, got 1"),
        ("\n\n", "own.txt: no examples"),
    ],
)
def test_bad_training_files_are_one_clear_error(tmp_path, text, message):
    train = write(tmp_path / "own.txt", text)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_task("ner", "custom").resolve(argparse_like(train_file=train))


def test_bad_jsonl_lines_name_file_and_line(tmp_path):
    cases = {
        '{"tokens": ["a", "b"], "tags": ["O"]}': "t.jsonl:2: 2 tokens but 1 tags; give one tag per token.",
        '{"tokens": ["a"]}': "t.jsonl:2: missing field 'tags'",
        '{"tokens": [" "], "tags": ["O"]}': "t.jsonl:2: 'tokens[0]' is blank",
        "[1, 2]": "t.jsonl:2: expected a JSON object, got list.",
    }
    for line, message in cases.items():
        train = write(tmp_path / "t.jsonl", '{"tokens": ["x"], "tags": ["B-A"]}\n' + line + "\n")
        with pytest.raises(DataError) as err:
            get_task("ner", "custom").resolve(argparse_like(train_file=train))
        assert str(err.value).removeprefix(str(tmp_path) + "/").startswith(message), err.value


# ------------------------------------------------------------------------------------------------------------
# Classification and regression


def test_own_sentence_pair_labels_train_and_predict(tiny_bert, tmp_path):
    """String labels yes/no in a tsv training file; a jsonl dev file; an unlabelled csv test file."""
    train = write(tmp_path / "train.tsv", "sentence1\tsentence2\tlabel\tsource\n" + "".join(
        f"{a}\t{b}\t{y}\tweb\n" for a, b, y in PAIRS * 3))  # fmt: skip
    dev = write(
        tmp_path / "dev.jsonl", jsonl({"sentence1": a, "sentence2": b, "label": y} for a, b, y in PAIRS)
    )
    test = write(
        tmp_path / "test.csv", "sentence1,sentence2\n" + "".join(f'"{a}","{b}"\n' for a, b, _ in PAIRS)
    )
    results, out = train_run(tiny_bert, tmp_path, "glue", train, dev, test)

    described = {"labels": ["no", "yes"], "regression": False, "text_columns": ["sentence1", "sentence2"]}
    assert read_json(os.path.join(out, "args.json"))["data_args"]["own_data"] == described
    assert read_meta(os.path.join(out, "best_model"))["task"]["own_data"] == described
    assert load_file(os.path.join(out, "best_model", "model.safetensors"))["classifier.weight"].shape == (
        2,
        32,
    )
    assert {"eval_accuracy", "eval_f1", "eval_combined_score"} <= set(results)
    assert not any(key.startswith("test_") for key in results)  # unlabelled test: predictions only

    rows = read_jsonl(os.path.join(out, "predict_results_test.jsonl"))
    assert [r["index"] for r in rows] == [0, 1, 2, 3] and {r["prediction"] for r in rows} <= {"no", "yes"}
    records = [{"sentence1": a, "sentence2": b} for a, b, _ in PAIRS]
    results, lines = predict_file(tiny_bert, last_epoch(out, tmp_path), records, tmp_path)
    assert [line["prediction"] for line in lines] == [r["prediction"] for r in rows]
    assert all(set(r["scores"]) == {"no", "yes"} for r in results)


def test_a_regression_file_trains_one_output_scored_by_correlation(tiny_bert, tmp_path):
    scores = [0.5, 4.0, 3.25, 1.0]  # 0.5 is not an integer: regression
    text = "sentence1,label\n" + "".join(f"{a},{s}\n" for (a, _, _), s in zip(PAIRS, scores, strict=True))
    train = write(tmp_path / "train.csv", text)
    test = write(tmp_path / "test.jsonl", jsonl({"sentence1": a} for a, _, _ in PAIRS))  # no scores
    results, out = train_run(tiny_bert, tmp_path, "glue", train, train, test)

    described = {"labels": None, "regression": True, "text_columns": ["sentence1"]}
    assert read_json(os.path.join(out, "args.json"))["data_args"]["own_data"] == described
    assert load_file(os.path.join(out, "best_model", "model.safetensors"))["classifier.weight"].shape == (
        1,
        32,
    )
    assert {"eval_pearson", "eval_spearmanr"} <= set(results) and "eval_accuracy" not in results
    assert "best_eval_pearson" in read_json(os.path.join(out, "best_results.json"))
    rows = read_jsonl(os.path.join(out, "predict_results_test.jsonl"))
    records = [{"sentence1": a} for a, _, _ in PAIRS]
    results, lines = predict_file(tiny_bert, last_epoch(out, tmp_path), records, tmp_path)
    assert [line["prediction"] for line in lines] == pytest.approx([r["prediction"] for r in rows], abs=1e-5)
    assert all(isinstance(r["prediction"], float) and r["scores"] is None for r in results)


def test_search_ranks_a_regression_run_by_its_correlation_and_a_sweep_compares_the_labels(
    tiny_bert, tmp_path
):
    """search.py's default metric is the resolved task's (pearson for regression, not the custom row's accuracy),
    and a finished folder is the run a sweep would start only with the same resolved labels."""
    import search

    scores = [0.5, 4.0, 3.25, 1.0]
    text = "sentence1,label\n" + "".join(f"{a},{s}\n" for (a, _, _), s in zip(PAIRS, scores, strict=True))
    train = write(tmp_path / "train.csv", text)
    _, out = train_run(tiny_bert, tmp_path, "glue", train, train, train)
    assert search.default_metric("custom", read_json(os.path.join(out, "args.json"))) == "pearson"

    sweep = ["--model_name_or_path", tiny_bert, "--task_name", "glue", "--dataset_name", "custom",
             "--validation_file", train, "--test_file", train, "--output_dir", out,
             "--do_train", "--do_eval", "--do_predict", *COMMON]  # fmt: skip
    assert search.args_differences(out, [*sweep, "--train_file", train]) == []
    # the same file with 0/1 labels: the same flags, other labels
    classes = "sentence1,label\n" + "".join(f"{a},{k % 2}\n" for k, (a, _, _) in enumerate(PAIRS))
    write(train, classes)
    (line,) = search.args_differences(out, [*sweep, "--train_file", train])
    assert line.startswith("--own_data: recorded {'labels': None, 'regression': True")


@pytest.mark.parametrize(
    "labels,described",
    [
        (['"yes"', '"no"', '"maybe"'], ["maybe", "no", "yes"]),  # strings: sorted
        (
            ["10", "2", '"1"', "1.0"],
            ["1", "2", "10"],
        ),  # integers by value, sorted numerically; 1, "1", 1.0: one class
        (["true", "false"], ["false", "true"]),
        (["2", "0.5"], None),  # every label a number, one not an integer: regression
        (['"0.25"', "3"], None),  # text that reads as a number counts as one
        (['"low"', "0.5"], ["0.5", "low"]),  # not every label a number: classes
    ],
)
def test_which_labels_make_classes_and_which_make_regression(tmp_path, labels, described):
    train = write(tmp_path / "t.jsonl", "".join(f'{{"sentence1": "s", "label": {y}}}\n' for y in labels))
    task = get_task("glue", "custom").resolve(argparse_like(train_file=train))
    assert task.own_data.description["labels"] == described
    assert task.label_list == (tuple(described) if described else None)
    assert task.main_metric == ("accuracy" if described else "pearson")


def test_classification_and_regression_metrics_by_hand(tmp_path):
    """Accuracy 3/4; per-class F1 maybe 1, no 2/3, yes 2/3 -> macro 7/9. Pearson of (1, 2, 3) vs (1, 2, 4):
    sum(xy) = 3 over sqrt(2 * 42/9) = 9 / sqrt(84); Spearman 1 (same order)."""
    rows = [{"sentence1": "s", "label": y} for y in ("maybe", "no", "yes")]
    classes = get_task("glue", "custom").resolve(
        argparse_like(train_file=write(tmp_path / "c.jsonl", jsonl(rows)))
    )
    gold, pred = [0, 1, 2, 2], [0, 1, 1, 2]
    logits = np.eye(3)[pred]
    scores = classes.compute_metrics(logits, {"labels": gold}, None, None)
    assert scores == pytest.approx({"accuracy": 0.75, "f1": 7 / 9, "combined_score": (0.75 + 7 / 9) / 2})
    records = classes.predictions_to_records(logits, None, Dataset.from_dict({"idx": [0, 1, 2, 3]}), None)
    assert [r["prediction"] for r in records] == ["maybe", "no", "no", "yes"]

    rows = [{"sentence1": "s", "sentence2": "t", "label": y} for y in (0.5, 2)]
    scores_task = get_task("glue", "custom").resolve(
        argparse_like(train_file=write(tmp_path / "r.jsonl", jsonl(rows)))
    )
    scores = scores_task.compute_metrics(
        np.array([[1.0], [2.0], [3.0]]), {"labels": [1.0, 2.0, 4.0]}, None, None
    )
    assert scores == pytest.approx(
        {"pearson": 9 / 84**0.5, "spearmanr": 1.0, "combined_score": (9 / 84**0.5 + 1) / 2}
    )


def test_an_unseen_dev_label_names_file_line_and_label(tiny_bert, tmp_path):
    train = write(tmp_path / "train.csv", "sentence1,label\n" + "".join(f"{a},{y}\n" for a, _, y in PAIRS))
    dev = write(tmp_path / "dev.csv", "sentence1,label\nA cat.,yes\nA dog.,maybe\n")
    argv = ["--model_name_or_path", tiny_bert, "--task_name", "glue", "--dataset_name", "custom",
            "--train_file", train, "--validation_file", dev, "--output_dir", str(tmp_path / "out"),
            "--do_train", "--do_eval", *COMMON]  # fmt: skip
    with pytest.raises(DataError) as err:
        run.main(argv)
    assert str(err.value) == (
        f"{dev}:3: label 'maybe' is not one of the training file's labels (no, yes); add it to --train_file {train} "
        "or fix the line."
    )


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("t.txt", "sentence1,label\na,b\n", "t.txt: name it .jsonl, .json (one object per line), .csv or .tsv"),
        ("t.csv", "text,label\na,b\n", "t.csv:1: the header ['text', 'label'] has no 'sentence1' column"),
        ("t.csv", "sentence1,label\na,b\nc\n", "t.csv:3: 1 fields, the header has 2."),
        ("t.csv", "sentence1,label\na,b\nc,\n", "t.csv:3: no label; every line of the training file needs one."),
        ("t.csv", "sentence1,label\na,yes\nb,yes\n", "t.csv: every line has the label 'yes': a classifier needs"),
        ("t.jsonl", '{"sentence1": "a", "label": [1]}\n', "t.jsonl:1: field 'label' must be a string or a number"),
        ("t.jsonl", '{"sentence1": "a", "label": 0.5}\n{"sentence1": "b", "label": NaN}\n',
         "t.jsonl:2: score nan is not a finite number."),
    ],
)  # fmt: skip
def test_bad_classification_files_are_one_clear_error(tmp_path, name, text, message):
    with pytest.raises(DataError) as err:
        get_task("glue", "custom").resolve(argparse_like(train_file=write(tmp_path / name, text)))
    assert str(err.value).removeprefix(str(tmp_path) + "/").startswith(message), err.value


def test_every_split_must_have_the_training_files_columns_and_labels(tmp_path):
    train = write(
        tmp_path / "t.jsonl", jsonl({"sentence1": a, "sentence2": b, "label": y} for a, b, y in PAIRS)
    )
    task = get_task("glue", "custom").resolve(argparse_like(train_file=train))
    cases = {
        "validation": ('{"sentence1": "a", "label": "no"}\n', "v.jsonl:1: fields sentence1, but the training file has sentence1, sentence2."),
        "test": ('{"sentence1": "a", "sentence2": "b", "label": "no"}\n{"sentence1": "a", "sentence2": "b"}\n',
                 "v.jsonl:2: no label (the file's other lines have one: label all or none)."),
    }  # fmt: skip
    for split, (text, message) in cases.items():
        args = argparse_like(train_file=train, **{f"{split}_file": write(tmp_path / "v.jsonl", text)})
        with pytest.raises(DataError) as err:
            task.load(args, [split])
        assert str(err.value) == f"{tmp_path}/{message}"


# ------------------------------------------------------------------------------------------------------------
# Resolution, records and serving


def test_the_registered_row_needs_its_labels_first(tmp_path):
    for family in ("ner", "glue"):
        task = get_task(family, "custom")
        assert task.label_list is None and task.own_data.description is None
        with pytest.raises(DataError, match="reads its labels from --train_file"):
            task.resolve(argparse_like())
        with pytest.raises(DataError, match="has no labels until they are read"):
            task.load(argparse_like(), ["train"])
        with pytest.raises(DataError, match="holds no 'own_data' description"):
            task.from_record({"family": family, "dataset": "custom", "labels": ["O", "B-X", "I-X"]})
    train = write(tmp_path / "t.txt", columns(SENTENCES))
    resolved = get_task("ner", "custom").resolve(argparse_like(train_file=train))
    assert resolved.resolve(argparse_like()) is resolved  # resolved once
    rebuilt = get_task("ner", "custom").from_record({"own_data": resolved.own_data.description})
    assert rebuilt.label_list == resolved.label_list and rebuilt.own_data == resolved.own_data
    with pytest.raises(DataError, match="needs --test_file for the test split"):
        resolved.load(argparse_like(train_file=train), ["test"])


def test_a_checkpoint_is_refused_on_data_with_other_labels_of_the_same_count(tiny_bert, tmp_path):
    """--ptuning_checkpoint with another training file whose labels differ but fit the head: refused, not
    relabelled."""
    train = write(tmp_path / "train.csv", "sentence1,label\n" + "".join(f"{a},{y}\n" for a, _, y in PAIRS))
    _, out = train_run(tiny_bert, tmp_path, "glue", train, train, train)
    other = write(tmp_path / "other.csv", "sentence1,label\nA.,good\nB.,bad\n")

    def evaluate(train_file):
        argv = ["--model_name_or_path", tiny_bert, "--task_name", "glue", "--dataset_name", "custom", "--train_file",
                train_file, "--validation_file", train_file, "--output_dir", str(tmp_path / "eval"), "--do_eval",
                "--ptuning_checkpoint", out, *COMMON]  # fmt: skip
        return run.main(argv)

    with pytest.raises(PTuningError) as err:
        evaluate(other)
    assert "trained with the labels ['no', 'yes'], this run's data gives ['bad', 'good']" in str(err.value)
    again = evaluate(train)
    assert again["eval_accuracy"] == read_json(os.path.join(out, "best_results.json"))["best_eval_accuracy"]


def test_serving_refuses_a_custom_record_without_its_description(tiny_bert, tmp_path):
    from serving import Predictor

    train = write(tmp_path / "train.csv", "sentence1,label\n" + "".join(f"{a},{y}\n" for a, _, y in PAIRS))
    _, out = train_run(tiny_bert, tmp_path, "glue", train, train, train)
    tensors = load_file(os.path.join(out, "best_model", "model.safetensors"))
    meta = read_meta(os.path.join(out, "best_model"))
    meta["task"]["own_data"] = None  # as a record written without it
    tensors["ptuning_meta"] = torch.tensor(list(json.dumps(meta).encode()), dtype=torch.uint8)
    os.makedirs(tmp_path / "old")
    save_file(tensors, str(tmp_path / "old" / "model.safetensors"))
    predictor = Predictor(tiny_bert, device="cpu")
    assert predictor.attach("own", out).task.label_list == ("no", "yes")
    with pytest.raises(PTuningError, match="adapter 'old' .*holds no 'own_data' description"):
        predictor.attach("old", str(tmp_path / "old"))


def argparse_like(**files):
    """The data arguments a task's resolve/load read: the three explicit files (None unless given)."""
    from types import SimpleNamespace

    return SimpleNamespace(**{"train_file": None, "validation_file": None, "test_file": None, **files})


def test_load_best_model_at_end_ranks_checkpoints_by_the_files_metric(tiny_bert, tmp_path):
    import arguments

    scores = [0.5, 4.0, 3.25, 1.0]  # regression: pearson, not the custom row's accuracy
    text = "sentence1,label\n" + "".join(f"{a},{s}\n" for (a, _, _), s in zip(PAIRS, scores, strict=True))
    train = write(tmp_path / "train.csv", text)
    argv = ["--model_name_or_path", tiny_bert, "--task_name", "glue", "--dataset_name", "custom", "--train_file",
            train, "--validation_file", train, "--output_dir", str(tmp_path / "o"), "--do_train", "--do_eval",
            "--eval_strategy", "epoch", "--save_strategy", "epoch", "--load_best_model_at_end"]  # fmt: skip
    training_args = arguments.get_args(argv)[2]
    assert (training_args.metric_for_best_model, training_args.greater_is_better) == ("pearson", True)
