"""Cheaper evaluation, same numbers: test splits scored once with the best epoch's state, length-grouped batches.

Each protocol test trains one small run the original's way (`--eval_test_every_epoch --group_eval_by_length False`:
test scored at every improvement, batches in input order) and one the new default way, and requires the same
best_results.json, the same dev curve and the same predictions file."""

import json
import os
import random

import datasets
import numpy as np
import pytest
import torch

import fixtures
import run
from training.eval_order import length_order, restore_order, token_loss

WORDS = "the a of to in and is was for on with as by at from that this it be are".split()
NAMES = "Smith Jones Paris London Reuters Sony Berlin Clinton Moscow Toyota".split()


def conll_split(path: str, n: int, seed: int) -> None:
    """CoNLL-2003 columns; sentences of 2..30 words so that length grouping really reorders them."""
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(n):
        for _ in range(rng.randint(2, 30)):
            if rng.random() < 0.25:
                lines.append(f"{rng.choice(NAMES)} NNP B-NP {rng.choice(['B-PER', 'B-LOC', 'B-ORG'])}")
            else:
                lines.append(f"{rng.choice(WORDS)} DT B-NP O")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def rte_split(path: str, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            premise = " ".join(rng.choice(WORDS + NAMES) for _ in range(rng.randint(3, 40)))
            hypothesis = " ".join(rng.choice(WORDS + NAMES) for _ in range(rng.randint(2, 8)))
            label = "entailment" if hypothesis.split()[0] in premise.split() else "not_entailment"
            f.write(
                json.dumps({"premise": premise, "hypothesis": hypothesis, "idx": i, "label": label}) + "\n"
            )


def write_data(root: str, family: str) -> list[str]:
    """Train/dev/labelled test files; returns the run.py flags that point at them."""
    if family == "ner":
        os.makedirs(root)
        for split, n, seed in (("train", 40, 1), ("valid", 24, 2), ("test", 20, 3)):
            conll_split(os.path.join(root, f"{split}.txt"), n, seed)
        return ["--task_name", "ner", "--dataset_name", "conll2003", "--data_dir", root]
    if family == "qa":  # a labelled --test_file is scored, like CoNLL's test split
        fixtures.squad(root, n=16)
        test = os.path.join(root, "dev-v1.1.json")
        return ["--task_name", "qa", "--dataset_name", "squad", "--data_dir", root, "--test_file", test,
                "--doc_stride", "16"]  # fmt: skip
    os.makedirs(os.path.join(root, "RTE"))  # SuperGLUE test files carry no labels: predictions only
    for split, n, seed in (("train", 48, 1), ("val", 24, 2), ("test", 20, 3)):
        rte_split(os.path.join(root, "RTE", f"{split}.jsonl"), n, seed)
    return ["--task_name", "superglue", "--dataset_name", "rte", "--data_dir", root]


def train(model_dir, data_flags, out, extra=()):
    argv = [
        "--model_name_or_path", model_dir, *data_flags, "--output_dir", out,
        "--do_train", "--do_eval", "--do_predict", "--prefix", "--pre_seq_len", "4",
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "4", "--num_train_epochs", "5",
        "--learning_rate", "3e-2", "--eval_strategy", "epoch", "--save_strategy", "epoch", "--report_to", "none",
        "--disable_tqdm", "true", "--seed", "3", "--max_seq_length", "64", *extra,
    ]  # fmt: skip
    run.main(argv)
    with open(os.path.join(out, "trainer_state.json")) as f:
        history = json.load(f)["log_history"]
    with open(os.path.join(out, "best_results.json")) as f:
        best = json.load(f)
    with open(os.path.join(out, "predict_results_test.jsonl")) as f:
        predictions = f.read()
    return best, history, predictions


PROTOCOL_CASES = {  # family: (main dev metric, labelled test split?, predictions written)
    "ner": ("eval_f1", True, 20),
    "qa": ("eval_f1", True, 8),
    "superglue": ("eval_accuracy", False, 20),
}


@pytest.mark.parametrize("family", list(PROTOCOL_CASES))
def test_new_default_gives_the_original_protocols_numbers(tiny_bert, tmp_path, family):
    main, labelled_test, n_predictions = PROTOCOL_CASES[family]
    data_flags = write_data(str(tmp_path / "data"), family)
    before = train(tiny_bert, data_flags, str(tmp_path / "before"), ["--eval_test_every_epoch", "--group_eval_by_length", "False"])  # fmt: skip
    after = train(tiny_bert, data_flags, str(tmp_path / "after"))
    (best_b, history_b, pred_b), (best_a, history_a, pred_a) = before, after

    assert set(best_b) == set(best_a)
    assert any(k.startswith("best_test_") for k in best_a) == labelled_test
    assert best_a["best_epoch"] == best_b["best_epoch"]
    for key, value in best_b.items():
        assert best_a[key] == pytest.approx(value, abs=1e-6), key
    assert pred_a == pred_b and pred_a.count("\n") == n_predictions  # same labels, same (input) order

    # the training trajectory is untouched: the same dev score at every epoch
    assert [e[main] for e in history_a if main in e] == pytest.approx(
        [e[main] for e in history_b if main in e]
    )
    if labelled_test:  # scored at every improvement before, exactly once after, logged at the best dev step
        tests_before = [e for e in history_b if "test_loss" in e]
        tests_after = [e for e in history_a if "test_loss" in e]
        best_step = next(
            e["step"] for e in history_b if e.get(main) == max(x[main] for x in history_b if main in x)
        )
        assert len(tests_after) == 1 and tests_after[0]["step"] == best_step
        assert len(tests_before) >= 1 and tests_before[-1]["step"] == best_step


def test_unpadded_features_are_reordered_and_scored_in_input_order(tiny_bert, tmp_path, monkeypatch):
    """--pad_to_max_length False (every NER/SRL run script): features have their own lengths, so length grouping
    really permutes dev and test. The metric must still be the one of the original (input) order: the same numbers
    as a run scored in input order, and --do_predict's test F1 equal to seqeval of the test file's gold tags
    against the predictions file, by hand. (With the default padding every feature has length max_seq_length,
    length_order is the identity and the protocol test above cannot see the order.)"""
    from tasks import tagging
    from training import trainer

    data_flags = write_data(str(tmp_path / "data"), "ner")
    orders = []  # every permutation the grouped run scored with

    def spy(features):
        order = length_order(features)
        orders.append(order.copy())
        return order

    unpadded = ["--pad_to_max_length", "False"]
    best_b, history_b, pred_b = train(
        tiny_bert, data_flags, str(tmp_path / "before"), [*unpadded, "--group_eval_by_length", "False"]
    )
    assert orders == []  # input order: nothing reordered
    monkeypatch.setattr(trainer, "length_order", spy)
    best_a, history_a, pred_a = train(tiny_bert, data_flags, str(tmp_path / "after"), unpadded)

    # dev (24 sentences) at 5 epochs + --do_eval, test (20) once at the best epoch + --do_predict
    assert sorted(len(o) for o in orders) == [20, 20] + [24] * 6
    for order in orders:
        assert sorted(order.tolist()) == list(range(len(order)))
        assert (order != np.arange(len(order))).sum() >= len(order) // 2  # really reordered
    assert best_a == pytest.approx(best_b, abs=1e-6) and best_a["best_eval_f1"] > 0.1
    assert [e["eval_f1"] for e in history_a if "eval_f1" in e] == pytest.approx(
        [e["eval_f1"] for e in history_b if "eval_f1" in e], abs=1e-6
    )
    assert pred_a == pred_b
    # by hand: seqeval of the test file's gold tags against the predictions file, line by line in input order
    gold = [
        [line.split()[-1] for line in block.splitlines()]
        for block in open(tmp_path / "data" / "test.txt").read().split("\n\n")[1:]
        if block.strip()
    ]
    rows = [json.loads(line) for line in pred_a.splitlines()]
    assert [len(r["tags"]) for r in rows] == [len(g) for g in gold]
    with open(tmp_path / "after" / "test_results.json") as f:  # --do_predict: the final state's test scores
        scored = json.load(f)
    assert scored["test_f1"] > 0.1
    assert tagging.seqeval_scores(gold, [r["tags"] for r in rows])["f1"] == pytest.approx(
        scored["test_f1"], abs=1e-9
    )


def test_deferred_scoring_after_a_resume_reads_the_best_model_from_disk(tiny_bert, tmp_path):
    data_flags = write_data(str(tmp_path / "data"), "ner")
    out = str(tmp_path / "run")
    best, history, predictions = train(tiny_bert, data_flags, out)
    # rerun the finished folder: nothing left to train, the in-memory best state is gone, best_model/ is on disk
    best_again, history_again, predictions_again = train(tiny_bert, data_flags, out)
    assert best_again == best and predictions_again == predictions
    assert sum("test_loss" in e for e in history_again) == 1


def test_length_order_is_longest_first_and_stable():
    features = datasets.Dataset.from_dict({"input_ids": [[1] * 3, [1] * 5, [1], [1] * 5, [1] * 3]})
    assert length_order(features).tolist() == [1, 3, 0, 4, 2]
    choices = datasets.Dataset.from_dict({"input_ids": [[[1] * 2, [1] * 7], [[1] * 4, [1] * 4]]})  # (C, T_c)
    assert length_order(choices).tolist() == [0, 1]


def test_restore_order_undoes_the_selection():
    order = np.array([1, 3, 0, 4, 2])
    original = np.arange(10).reshape(5, 2)
    scored = original[order]  # what the model returns for features.select(order)
    assert (restore_order(scored, order) == original).all()
    start, end = restore_order((scored, scored * 10), order)  # QA: (start_logits, end_logits)
    assert (start == original).all() and (end == original * 10).all()


def test_token_loss_is_the_mean_over_labelled_tokens():
    logits = np.array([[[2.0, 0.0], [0.0, 1.0], [-100, -100]], [[0.5, 0.5], [-100, -100], [-100, -100]]])
    labels = np.array([[0, 1, -100], [1, -100, -100]])
    by_hand = -np.mean([np.log(np.exp(2) / (np.exp(2) + 1)), np.log(np.e / (1 + np.e)), np.log(0.5)])
    assert token_loss(logits, labels) == pytest.approx(by_hand, abs=1e-12)
    torch_loss = torch.nn.functional.cross_entropy(
        torch.tensor(logits).view(-1, 2), torch.tensor(labels).view(-1), ignore_index=-100
    )
    assert token_loss(logits, labels) == pytest.approx(torch_loss.item(), abs=1e-12)


@pytest.mark.parametrize("group_eval", ["True", "False"])
def test_length_grouped_training_batches_leave_evaluation_in_input_order(
    tiny_bert, tmp_path, monkeypatch, group_eval
):
    """--train_sampling_strategy group_by_length groups TRAINING batches (as --group_by_length did in the original's
    transformers 4.11). Today's HF applies it to evaluation too, in shuffled megabatches, which paired predictions
    with the wrong features (CoNLL-2003 dev F1 4.3 for a run whose training loss matched the defaults')."""
    root = str(tmp_path / "data")
    os.makedirs(root)
    # dev > 50 rows: HF's length grouping would shuffle 2+ megabatches of 50 batches of 1
    for split, n, seed in (("train", 16, 1), ("valid", 120, 2), ("test", 8, 3)):
        conll_split(os.path.join(root, f"{split}.txt"), n, seed)
    data_flags = ["--task_name", "ner", "--dataset_name", "conll2003", "--data_dir", root]
    loops = []  # per evaluation: (rows the loop read, rows of the dataset it was given), padding stripped
    evaluation_loop = run.PTuningTrainer.evaluation_loop

    def spy(self, dataloader, *args, **kwargs):
        read = [[i for i in row if i != 0] for batch in dataloader for row in batch["input_ids"].tolist()]
        loops.append((read, [[i for i in row if i != 0] for row in dataloader.dataset["input_ids"]]))
        return evaluation_loop(self, dataloader, *args, **kwargs)

    monkeypatch.setattr(run.PTuningTrainer, "evaluation_loop", spy)
    extra = ["--train_sampling_strategy", "group_by_length", "--group_eval_by_length", group_eval,
             "--per_device_eval_batch_size", "1", "--num_train_epochs", "1"]  # fmt: skip
    train(tiny_bert, data_flags, str(tmp_path / "run"), extra)
    # dev during training, test at the best epoch, dev again (--do_eval), test (--do_predict)
    assert [len(given) for _, given in loops] == [120, 8, 120, 8]
    for read, given in loops:
        assert read == given
