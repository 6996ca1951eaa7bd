"""--torch_compile (HF TrainingArguments) and --pad_to_multiple_of: dynamic padding in length buckets, so a compiled
run compiles a bounded number of graphs; a compiled run scores as an eager one. On CPU with the aot_eager backend
(dynamo's graph capture and autograd tracing, eager kernels: no C++ compiler needed)."""

import json
import os

import pytest
import torch
from test_run import run_main
from torch._dynamo.utils import counters
from transformers import AutoTokenizer

import run
from tasks import get_task
from tiny import save_tiny_model
from training.data import build_collator
from training.levers import COMPILE_PAD_MULTIPLE

COMPILE = ["--torch_compile", "True", "--torch_compile_backend", "aot_eager"]
DYNAMIC = ["--pad_to_max_length", "False", "--num_train_epochs", "1", "--hidden_dropout_prob", "0"]


@pytest.fixture(scope="module")
def tiny_bert_no_dropout(tmp_path_factory):
    """The tiny BERT without attention dropout (--hidden_dropout_prob 0 sets the rest): dropout masks are drawn
    for (B, T, H) tensors, so another padded length T would draw other masks and train another run."""
    path = save_tiny_model(str(tmp_path_factory.mktemp("tiny-bert-no-dropout")), "bert")
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config["attention_probs_dropout_prob"] = 0.0
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    return path


def best(out):
    with open(os.path.join(out, "best_results.json")) as f:
        return json.load(f)


def assert_same_scores(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-6), key


def test_default_bucket_width_under_torch_compile_only(capsys):
    base = "--model_name_or_path m --task_name superglue --dataset_name rte --output_dir o".split()
    assert run.get_args(base)[2].pad_to_multiple_of is None  # eager: each batch padded to its longest row
    assert run.get_args(base + COMPILE)[2].pad_to_multiple_of == COMPILE_PAD_MULTIPLE
    assert run.get_args(base + COMPILE + ["--pad_to_multiple_of", "16"])[2].pad_to_multiple_of == 16
    with pytest.raises(SystemExit):
        run.get_args(base + ["--pad_to_multiple_of", "0"])
    assert "--pad_to_multiple_of must be >= 1, got 0." in capsys.readouterr().err


@pytest.mark.parametrize(
    "family,dataset", [("ner", "conll2003"), ("superglue", "rte"), ("superglue", "copa")]
)
def test_dynamic_padding_pads_to_the_multiple(family, dataset, tiny_bert):
    """Every dynamic collator (tagging, pairs, multiple choice) rounds the batch length up; static padding stays."""
    task = get_task(family, dataset)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    args = run.get_args(
        f"--model_name_or_path m --task_name {family} --dataset_name {dataset} --output_dir o".split()
        + ["--pad_to_multiple_of", "16", "--pad_to_max_length", "False"]
    )
    data_args, training_args = args[1], args[2]
    row = {"input_ids": [101, 7, 8, 102], "attention_mask": [1, 1, 1, 1]}
    row = {**row, "labels": [0, 1, 2, 0]} if family == "ner" else {**row, "labels": 1}
    if task.hints.collator == "multiple_choice":
        row = {
            "input_ids": [row["input_ids"]] * 2,
            "attention_mask": [row["attention_mask"]] * 2,
            "labels": 1,
        }
    batch = build_collator(task, tokenizer, data_args, training_args)([row])
    assert batch["input_ids"].shape[-1] == 16
    assert batch["attention_mask"].sum() == 4 * batch["input_ids"].shape[:-1].numel()
    if family == "ner":
        assert batch["labels"][0, 4:].eq(-100).all()  # padded positions are out of the loss and the metric


def test_padding_to_a_multiple_gives_the_same_results(tiny_bert_no_dropout, tmp_path):
    """Masks hide the extra padding: the same best_results.json (an eager tagging run, dynamic padding)."""
    _, plain, _ = run_main(tiny_bert_no_dropout, "ner", "prefix", tmp_path / "plain", DYNAMIC)
    _, padded, _ = run_main(
        tiny_bert_no_dropout, "ner", "prefix", tmp_path / "padded", DYNAMIC + ["--pad_to_multiple_of", "16"]
    )
    assert_same_scores(best(plain), best(padded))


@pytest.mark.parametrize("family", ["ner", "superglue"])
def test_compiled_run_scores_as_an_eager_one(family, tiny_bert_no_dropout, tmp_path):
    """Training (compiled by accelerate) and an evaluation-only run of its checkpoint (compiled too), with --prefix."""
    flags = DYNAMIC + ["--pad_to_multiple_of", "16"]
    _, eager, _ = run_main(tiny_bert_no_dropout, family, "prefix", tmp_path / "eager", flags)
    counters.clear()
    _, compiled, argv = run_main(
        tiny_bert_no_dropout, family, "prefix", tmp_path / "compiled", flags + COMPILE
    )
    assert counters["stats"]["unique_graphs"] >= 1  # the model did go through dynamo
    assert_same_scores(best(eager), best(compiled))

    i = argv.index("--output_dir")
    argv = [
        a for a in argv[:i] + ["--output_dir", str(tmp_path / "reeval")] + argv[i + 2 :] if a != "--do_train"
    ]
    counters.clear()
    again = run.main([*argv, "--ptuning_checkpoint", os.path.join(compiled, "best_model")])
    assert counters["stats"]["unique_graphs"] >= 1
    metric = {"ner": "f1", "superglue": "accuracy"}[family]
    assert again[f"eval_{metric}"] == pytest.approx(best(compiled)[f"best_eval_{metric}"], abs=1e-6)


def many_lengths(root: str) -> str:
    """CoNLL-2003 files whose sentences have 1..46 words (3..48 tokens with [CLS]/[SEP]): many batch lengths."""
    os.makedirs(root, exist_ok=True)
    lines = ["-DOCSTART- -X- -X- O", ""]
    for n in range(1, 47):
        lines += [
            f"{'Paris' if i % 3 == 0 else 'the'} NNP B-NP {'B-LOC' if i % 3 == 0 else 'O'}" for i in range(n)
        ]
        lines.append("")
    for split in ("train", "valid", "test"):
        with open(os.path.join(root, f"{split}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return root


def test_compilations_stay_bounded_over_many_lengths(tiny_bert_no_dropout, tmp_path, monkeypatch):
    """46 lengths up to 48 tokens, buckets of 16: three lengths, so three training graphs, compiled with static
    shapes (one graph per shape, as CUDA graphs and the neuron backend need); without buckets dynamo gives up at its
    recompile limit and runs the rest eager. (Its default automatic dynamic shapes would bound both; the Trainer
    evaluates the uncompiled model during training.)"""
    monkeypatch.setattr(torch._dynamo.config, "automatic_dynamic_shapes", False)
    argv = ["--model_name_or_path", tiny_bert_no_dropout, "--task_name", "ner", "--dataset_name", "conll2003"]
    argv += ["--data_dir", many_lengths(str(tmp_path / "data")), "--do_train", "--do_eval", "--prefix"]
    argv += ["--pre_seq_len", "4", "--max_seq_length", "48", "--per_device_train_batch_size", "4"]
    argv += ["--per_device_eval_batch_size", "4", "--report_to", "none", "--save_strategy", "no"]
    argv += ["--eval_strategy", "epoch", "--disable_tqdm", "true", *DYNAMIC, *COMPILE]
    graphs = {}
    for multiple in (16, 1):
        counters.clear()
        torch._dynamo.reset()
        run.main(
            [*argv, "--output_dir", str(tmp_path / f"out{multiple}"), "--pad_to_multiple_of", str(multiple)]
        )
        graphs[multiple] = counters["stats"]["unique_graphs"]
    assert graphs[16] == 3  # (4, 16), (4, 32), (4, 48) tokens
    assert graphs[1] >= torch._dynamo.config.recompile_limit
