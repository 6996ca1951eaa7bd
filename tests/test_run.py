"""run.py main() end to end on fixture data with tiny random models, one dataset of each family."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file

import fixtures
import run
from tiny import save_tiny_model


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory):
    return save_tiny_model(str(tmp_path_factory.mktemp("tiny-roberta")), "roberta")


COMMON = [
    "--per_device_train_batch_size",
    "4",
    "--per_device_eval_batch_size",
    "4",
    "--num_train_epochs",
    "2",
    "--eval_strategy",
    "epoch",
    "--save_strategy",
    "epoch",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--seed",
    "7",
    "--max_seq_length",
    "48",
    "--learning_rate",
    "5e-3",
    "--logging_steps",
    "1",
]
METHOD_FLAGS = {
    "prefix": ["--prefix", "--pre_seq_len", "4"],
    "prompt": ["--prompt", "--pre_seq_len", "4"],
    "finetune": [],
}
FAMILIES = {  # family, dataset, fixture writer, main metric, extra flags
    "superglue": ("rte", fixtures.superglue_rte, "accuracy", ["--do_predict"]),
    "glue": ("stsb", fixtures.glue_stsb, "pearson", []),
    "ner": ("conll2003", fixtures.conll2003, "f1", ["--do_predict"]),
    "srl": ("conll2005", fixtures.conll2005, "f1", ["--do_predict"]),
    "qa": ("squad", fixtures.squad, "f1", ["--doc_stride", "16"]),
}


def run_main(model_dir, family, method, tmp_path, extra=()):
    dataset, write, _, flags = FAMILIES[family]
    data_dir = write(str(tmp_path / "data"))
    out = str(tmp_path / "out")
    argv = [
        "--model_name_or_path",
        model_dir,
        "--task_name",
        family,
        "--dataset_name",
        dataset,
        "--data_dir",
        data_dir,
        "--output_dir",
        out,
        "--do_train",
        "--do_eval",
        *COMMON,
        *METHOD_FLAGS[method],
        *flags,
        *extra,
    ]
    return run.main(argv), out, argv


def read(out, name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


@pytest.mark.parametrize(
    "family,method",
    [
        ("superglue", "prefix"),
        ("superglue", "prompt"),
        ("superglue", "finetune"),
        ("glue", "prefix"),
        ("ner", "prefix"),
        ("ner", "prompt"),
        ("ner", "finetune"),
        ("srl", "prefix"),
        ("qa", "prefix"),
    ],
)
def test_main_writes_results_and_a_reloadable_best_checkpoint(family, method, tiny_bert, tmp_path):
    results, out, argv = run_main(tiny_bert, family, method, tmp_path)
    metric = FAMILIES[family][2]
    all_results, best = read(out, "all_results.json"), read(out, "best_results.json")
    saved_args = read(out, "args.json")
    assert saved_args["model_args"]["prefix"] == (method == "prefix")
    assert saved_args["data_args"]["dataset_name"] == FAMILIES[family][0]
    assert f"eval_{metric}" in all_results and all_results["epoch"] == 2.0

    # best_results.json equals the eval metrics of the best epoch in the Trainer's log history
    history = [e for e in read(out, "trainer_state.json")["log_history"] if f"eval_{metric}" in e]
    assert len(history) == 2
    top = max(history, key=lambda e: e[f"eval_{metric}"])  # first of ties, as the original's strict ">"
    top = next(e for e in history if e[f"eval_{metric}"] == top[f"eval_{metric}"])
    assert best["best_epoch"] == int(top["epoch"]) - 1
    assert best[f"best_eval_{metric}"] == top[f"eval_{metric}"]

    # the prefix-only checkpoint of the best epoch is small and reproduces its dev score
    saved = load_file(os.path.join(out, "best_model", "model.safetensors"))
    assert any(k.startswith("backbone.") for k in saved) == (method == "finetune")
    eval_out = str(tmp_path / "reeval")
    i = argv.index("--output_dir")
    argv2 = [
        a
        for a in argv[:i] + ["--output_dir", eval_out] + argv[i + 2 :]
        if a not in ("--do_train", "--do_predict")
    ]
    again = run.main(argv2 + ["--ptuning_checkpoint", os.path.join(out, "best_model")])
    assert again[f"eval_{metric}"] == pytest.approx(best[f"best_eval_{metric}"], abs=1e-6)


def test_prefix_run_saves_only_the_trainable_part(tiny_bert, tmp_path):
    results, out, _ = run_main(tiny_bert, "superglue", "prefix", tmp_path)
    saved = load_file(os.path.join(out, "model.safetensors"))
    # prefix table (P x 2*L*H) + classifier (H*2 + 2) + the meta record; no backbone tensor
    assert sorted(k for k in saved if k != "ptuning_meta") == [
        "classifier.bias",
        "classifier.weight",
        "prefix_encoder.embedding.weight",
    ]
    assert saved["prefix_encoder.embedding.weight"].shape == (4, 2 * 2 * 32)
    assert results["trainable_params"] == 4 * 2 * 2 * 32 + 32 * 2 + 2
    with open(os.path.join(out, "predict_results_test.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [r["idx"] for r in rows] == [0, 1, 2, 3]
    assert {r["label"] for r in rows} <= {"entailment", "not_entailment"}


def test_roberta_ner_runs_on_pre_split_words(tiny_roberta, tmp_path):
    """RoBERTa tokenizers refuse pre-split words without add_prefix_space; the backbone table sets it."""
    results, out, _ = run_main(tiny_roberta, "ner", "prefix", tmp_path)
    assert results["trainable_params"] == 4 * 2 * 2 * 32 + 32 * 9 + 9  # prefix + 9-tag classifier
    with open(os.path.join(out, "tokenizer_config.json")) as f:
        assert json.load(f)["add_prefix_space"] is True


def test_exponential_schedule_decays_lr_by_095_per_epoch(tiny_bert, tmp_path):
    _, out, _ = run_main(tiny_bert, "ner", "prefix", tmp_path, extra=["--num_train_epochs", "3"])
    logs = [e for e in read(out, "trainer_state.json")["log_history"] if "learning_rate" in e]
    steps_per_epoch = len(logs) // 3  # logging_steps=1: one entry per optimizer step
    for entry in logs:
        epoch = (entry["step"] - 1) // steps_per_epoch
        assert entry["learning_rate"] == pytest.approx(5e-3 * 0.95**epoch, rel=1e-6)


def test_linear_schedule_for_superglue(tiny_bert, tmp_path):
    _, out, _ = run_main(tiny_bert, "superglue", "prefix", tmp_path)
    logs = [e for e in read(out, "trainer_state.json")["log_history"] if "learning_rate" in e]
    total = logs[-1]["step"]
    for entry in (
        logs
    ):  # HF linear decay to 0, no warmup: lr after step s is lr0 * (1 - s / total) ... logged pre-step
        assert entry["learning_rate"] == pytest.approx(5e-3 * (1 - (entry["step"] - 1) / total), rel=1e-6)


def test_load_best_model_at_end_restores_the_best_prefix(tiny_bert, tmp_path):
    results, out, _ = run_main(
        tiny_bert,
        "superglue",
        "prefix",
        tmp_path,
        extra=["--load_best_model_at_end", "--num_train_epochs", "3"],
    )
    state = read(out, "trainer_state.json")
    best = read(out, "best_results.json")
    assert state["best_metric"] == best["best_eval_accuracy"]  # tracked on the task's metric, not the loss
    assert state["best_model_checkpoint"].endswith(f"checkpoint-{3 * (best['best_epoch'] + 1)}")
    final, best_model = (load_file(os.path.join(out, d, "model.safetensors")) for d in (".", "best_model"))
    assert final.keys() == best_model.keys()
    assert all((final[k] == best_model[k]).all() for k in final)
    assert results["eval_accuracy"] == best["best_eval_accuracy"]


def test_eval_only_needs_only_the_validation_file(tiny_bert, tmp_path):
    trained = run_main(tiny_bert, "superglue", "prefix", tmp_path / "trained")[1]  # a checkpoint to score
    data = fixtures.superglue_rte(str(tmp_path / "data"))
    os.remove(os.path.join(data, "RTE", "train.jsonl"))
    os.remove(os.path.join(data, "RTE", "test.jsonl"))
    argv = [
        "--model_name_or_path",
        tiny_bert,
        "--task_name",
        "superglue",
        "--dataset_name",
        "rte",
        "--data_dir",
        data,
    ]
    argv += ["--output_dir", str(tmp_path / "out"), "--do_eval", "--report_to", "none", "--prefix"]
    argv += ["--pre_seq_len", "4", "--max_seq_length", "48", "--ptuning_checkpoint", trained]
    results = run.main(argv)
    assert results["eval_samples"] == 6


def test_tokenisation_is_cached_between_runs(tiny_bert, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from tasks import get_task
    from training import data as data_module

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    task = get_task("superglue", "rte")
    args = run.get_args(
        [
            "--model_name_or_path",
            tiny_bert,
            "--task_name",
            "superglue",
            "--dataset_name",
            "rte",
            "--data_dir",
            fixtures.superglue_rte(str(tmp_path / "d")),
            "--output_dir",
            "o",
        ]
    )[1]
    raw = task.load(args, ["train"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)

    def guarded(batch, **kwargs):  # fails if called while tokenisation is forbidden
        assert not os.environ.get("TOKENISATION_FORBIDDEN"), "re-tokenised instead of reading the cache"
        return task.preprocess(batch, **kwargs)

    guarded_task = type(task)(**{**task.__dict__, "preprocess": guarded})
    first = data_module.tokenize(raw, guarded_task, tokenizer, args)
    monkeypatch.setenv("TOKENISATION_FORBIDDEN", "1")
    second = data_module.tokenize(raw, guarded_task, tokenizer, args)  # a cache hit: preprocess never runs
    assert second["train"].cache_files == first["train"].cache_files
    assert second["train"]["input_ids"] == first["train"]["input_ids"]
    args.max_seq_length = 16  # any change of the arguments re-tokenises
    with pytest.raises(Exception, match="re-tokenised instead of reading the cache"):
        data_module.tokenize(raw, guarded_task, tokenizer, args)


def test_qa_predict_on_a_labelled_test_file_scores_and_writes_answers(tiny_bert, tmp_path):
    test_file = os.path.join(fixtures.squad(str(tmp_path / "test-data")), "dev-v1.1.json")
    results, out, _ = run_main(
        tiny_bert, "qa", "prefix", tmp_path, extra=["--do_predict", "--test_file", test_file]
    )
    assert 0.0 <= results["test_f1"] <= 100.0 and "test_exact_match" in results
    with open(os.path.join(out, "predict_results_test.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"]


def test_bf16_run_with_the_frozen_backbone_stored_in_bf16_saves_a_float32_prefix(tiny_bert, tmp_path):
    """--bf16 --backbone_dtype bfloat16 through HF Trainer: it trains and evaluates, and the checkpoint holds the
    same float32 tensors as a float32 run (the backbone is never saved), so it loads on any backbone dtype."""
    flags = ["--bf16", "--use_cpu", "--backbone_dtype", "bfloat16"]
    results, out, _ = run_main(tiny_bert, "superglue", "prefix", tmp_path, flags)
    assert 0.0 <= results["eval_accuracy"] <= 1.0 and results["train_loss"] > 0
    saved = load_file(os.path.join(out, "model.safetensors"))
    tensors = {k: v.dtype for k, v in saved.items() if k != "ptuning_meta"}
    assert tensors == dict.fromkeys(
        ["classifier.bias", "classifier.weight", "prefix_encoder.embedding.weight"], torch.float32
    )
    assert read(out, "args.json")["model_args"]["backbone_dtype"] == "bfloat16"
