"""run.py never gives a silently wrong answer (issue 31): a run folder stands for its best_model/, an untrained
prefix is never scored, every schedule flag is obeyed or refused, a rerun keeps its train record, --do_eval gets
best_results.json, args.json survives a failed write, and file-system failures are one line."""

import errno
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import arguments
import fixtures
import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rte_argv(model_dir, tmp_path, out, *extra):
    data = str(tmp_path / "data")
    if not os.path.isdir(data):
        fixtures.superglue_rte(data)
    return [
        "--model_name_or_path", model_dir, "--task_name", "superglue", "--dataset_name", "rte",
        "--data_dir", data, "--output_dir", str(out), "--prefix", "--pre_seq_len", "4", "--max_seq_length", "48",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--num_train_epochs", "2",
        "--learning_rate", "5e-3", "--seed", "7", "--report_to", "none", "--disable_tqdm", "true",
        "--save_strategy", "epoch", "--logging_steps", "1", *extra,
    ]  # fmt: skip


def ner_argv(model_dir, tmp_path, out, *extra):
    data = fixtures.conll2003(str(tmp_path / "ner"))
    return [
        "--model_name_or_path", model_dir, "--task_name", "ner", "--dataset_name", "conll2003",
        "--data_dir", data, "--output_dir", str(out), "--prefix", "--pre_seq_len", "4", "--max_seq_length", "48",
        "--per_device_train_batch_size", "4", "--num_train_epochs", "2", "--learning_rate", "5e-3",
        "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no", "--logging_steps", "1",
        "--do_train", *extra,
    ]  # fmt: skip


def read(folder, name):
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


def usage_error(argv, capsys) -> str:
    """The one stderr line of a refused command line (exit 2)."""
    with pytest.raises(SystemExit) as info:
        arguments.get_args(argv)
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    """A finished 2-epoch RTE prefix run (no --eval_strategy given: it must still evaluate every epoch)."""
    tmp = tmp_path_factory.mktemp("trained")
    out = tmp / "run"
    argv = rte_argv(tiny_bert, tmp, out, "--do_train", "--do_eval")
    run.main(argv)
    return argv, str(out)


# -- 1. a run folder stands for its best_model/ ------------------------------------------------------------------
def test_a_run_folder_given_as_ptuning_checkpoint_loads_its_best_model(trained, tiny_bert, tmp_path):
    argv, out = trained
    # make the top-level (last epoch) weights unmistakably different from best_model/'s
    top = load_file(os.path.join(out, "best_model", "model.safetensors"))
    top["prefix_encoder.embedding.weight"] = top["prefix_encoder.embedding.weight"] * 50
    save_file(top, os.path.join(out, "model.safetensors"))
    last_only = tmp_path / "last_only"
    last_only.mkdir()
    shutil.copy(os.path.join(out, "model.safetensors"), last_only)

    def eval_with(checkpoint, name):
        return run.main(
            rte_argv(tiny_bert, tmp_path, tmp_path / name, "--do_eval", "--ptuning_checkpoint", checkpoint)
        )

    via_folder = eval_with(out, "via_folder")
    via_best = eval_with(os.path.join(out, "best_model"), "via_best")
    via_last = eval_with(str(last_only), "via_last")
    assert via_folder["eval_loss"] == via_best["eval_loss"]
    assert via_folder["eval_loss"] != via_last["eval_loss"]
    recorded = read(tmp_path / "via_folder", "args.json")["model_args"]["ptuning_checkpoint"]
    assert recorded == os.path.join(out, "best_model")  # args.json says which weights were scored


# -- 2. an untrained prefix is never scored ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "method,untrained", [("--prefix", "prefix and head"), ("--prompt", "prompt and head"), ("", "head")]
)
@pytest.mark.parametrize("action", ["--do_eval", "--do_predict"])
def test_scoring_an_untrained_model_is_refused(method, untrained, action, tiny_bert, tmp_path, capsys):
    """Without training or a checkpoint the head (and prefix/prompt) is random: refused for every method."""
    argv = [a for a in rte_argv(tiny_bert, tmp_path, tmp_path / "o", action) if a != "--prefix"] + [
        method
    ] * bool(method)
    line = usage_error(argv, capsys)
    assert f"without --do_train or --ptuning_checkpoint would score an untrained {untrained}:" in line
    assert not os.path.exists(tmp_path / "o")


def test_eval_only_with_a_checkpoint_is_allowed(trained, tiny_bert, tmp_path):
    _, out = trained
    argv = rte_argv(tiny_bert, tmp_path, tmp_path / "o", "--do_eval", "--ptuning_checkpoint", out)
    model_args, _, training_args, *_ = arguments.get_args(argv)
    assert model_args.ptuning_checkpoint == os.path.join(out, "best_model") and not training_args.do_train


# -- 3. schedule flags: obeyed or refused ------------------------------------------------------------------------
def test_lr_scheduler_type_is_obeyed_for_an_exponential_family(tiny_bert, tmp_path):
    """NER's default is the original's x0.95 per epoch; an explicit --lr_scheduler_type now rules (it was ignored)."""
    out = tmp_path / "const"
    run.main(ner_argv(tiny_bert, tmp_path, out, "--lr_scheduler_type", "constant"))
    state = read(out, "trainer_state.json")
    rates = [e["learning_rate"] for e in state["log_history"] if "learning_rate" in e]
    assert len(rates) >= 6 and set(rates) == {5e-3}
    assert read(out, "args.json")["training_args"]["lr_schedule"] == "hf"


def test_lr_scheduler_type_is_obeyed_for_a_linear_family(tiny_bert, tmp_path):
    argv = rte_argv(tiny_bert, tmp_path, tmp_path / "o", "--do_train", "--lr_scheduler_type", "constant")
    _, _, training_args, *_ = arguments.get_args(argv)
    assert training_args.lr_schedule == "hf" and training_args.lr_scheduler_type == "constant"


@pytest.mark.parametrize(
    "dataset,flags,expected",
    [
        ("conll2003", ["--warmup_steps", "3"], "--warmup_steps would be ignored"),
        (
            "conll2003",
            ["--lr_schedule", "exponential", "--lr_scheduler_type", "cosine"],
            "--lr_scheduler_type would",
        ),
        ("rte", ["--lr_schedule", "exponential", "--warmup_steps", "0.1"], "--warmup_steps would be ignored"),
        (
            "rte",
            ["--lr_schedule", "linear", "--lr_scheduler_type", "cosine"],
            "conflicts with --lr_schedule linear",
        ),
    ],
)
def test_a_schedule_flag_that_would_be_ignored_is_refused(
    dataset, flags, expected, tiny_bert, tmp_path, capsys
):
    family = "ner" if dataset == "conll2003" else "superglue"
    argv = [
        "--model_name_or_path", tiny_bert, "--task_name", family, "--dataset_name", dataset,
        "--output_dir", str(tmp_path / "o"), "--prefix", "--do_train", *flags,
    ]  # fmt: skip
    line = usage_error(argv, capsys)
    assert expected in line and "--lr_schedule hf" in line


# -- 5. a rerun keeps its train record; a resume says what its train metrics cover ------------------------------
def test_rerunning_a_finished_run_keeps_its_train_results(trained):
    argv, out = trained
    before = read(out, "train_results.json")
    assert before["train_loss"] > 0.1 and before["train_steps_run"] == 6
    again = run.main(argv)
    assert read(out, "train_results.json") == before
    assert read(out, "all_results.json")["train_loss"] == before["train_loss"]
    assert again["train_loss"] == before["train_loss"]


def test_train_metrics_after_a_resume_say_which_steps_they_cover(tiny_bert, tmp_path):
    out = tmp_path / "run"
    argv = rte_argv(tiny_bert, tmp_path, out, "--do_train", "--do_eval")
    run.main(argv)
    shutil.rmtree(out / "checkpoint-6")  # as if killed during the second epoch
    os.remove(out / "train_results.json")
    run.main(argv)
    metrics = read(out, "train_results.json")
    assert metrics["train_resumed_from_step"] == 3 and metrics["train_steps_run"] == 3


# -- 6. --do_eval without --eval_strategy still gives best_results.json and best_model/ ------------------------
def test_do_eval_without_eval_strategy_scores_every_epoch(trained):
    _, out = trained
    assert read(out, "args.json")["training_args"]["eval_strategy"] == "epoch"
    best = read(out, "best_results.json")
    history = [e for e in read(out, "trainer_state.json")["log_history"] if "eval_accuracy" in e]
    assert len(history) == 2 and best["best_eval_accuracy"] == max(e["eval_accuracy"] for e in history)
    assert os.path.isfile(os.path.join(out, "best_model", "model.safetensors"))


def test_an_explicit_eval_strategy_no_is_kept(tiny_bert, tmp_path):
    argv = rte_argv(tiny_bert, tmp_path, tmp_path / "o", "--do_train", "--do_eval", "--eval_strategy", "no")
    assert arguments.get_args(argv)[2].eval_strategy == "no"


# -- 15. args.json: written atomically, not rewritten on an equal resume ----------------------------------------
def test_args_json_survives_a_failed_rewrite_and_is_not_rewritten_when_equal(
    tiny_bert, tmp_path, monkeypatch
):
    out = str(tmp_path / "o")
    parsed = arguments.get_args(rte_argv(tiny_bert, tmp_path, out, "--do_train"))
    path = arguments.save_args(out, *parsed)
    with open(path) as f:
        original = f.read()

    def refuse(*_):
        raise AssertionError("an equal record must not be rewritten")

    monkeypatch.setattr(os, "replace", refuse)
    arguments.save_args(out, *parsed)  # equal: nothing written
    monkeypatch.undo()

    def disk_full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    parsed[2].learning_rate = 0.5  # a changed record whose write fails midway
    with pytest.raises(OSError) as info:
        arguments.save_args(out, *parsed)
    assert info.value.filename == path
    with open(path) as f:
        assert f.read() == original
    assert sorted(os.listdir(out)) == ["args.json"]  # no partial file left behind


# -- 18/19. one line instead of a traceback ----------------------------------------------------------------------
def test_seed_outside_its_range_is_a_usage_error(tiny_bert, tmp_path, capsys):
    line = usage_error(rte_argv(tiny_bert, tmp_path, tmp_path / "o", "--do_train", "--seed", "-1"), capsys)
    assert "--seed must be between 0 and 2**32 - 1, got -1" in line


def test_an_output_dir_under_a_file_is_a_usage_error(tiny_bert, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    line = usage_error(rte_argv(tiny_bert, tmp_path, tmp_path / "afile" / "sub", "--do_train"), capsys)
    assert f"{tmp_path / 'afile'}' is a file, not a folder" in line


@pytest.mark.parametrize(
    "path", ["./missing-model", "/nowhere/roberta-large", "a/b/c", "models/roberta-missing"]
)
def test_a_missing_local_model_path_is_one_line_without_the_hub(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # `models/x` can only mean this folder
    argv = [
        "--model_name_or_path",
        path,
        "--task_name",
        "superglue",
        "--dataset_name",
        "rte",
        "--output_dir",
        "o",
    ]
    line = usage_error([*argv, "--do_train", "--prefix"], capsys)
    assert f"--model_name_or_path {path!r} is not a folder here" in line


def test_hub_ids_are_not_taken_for_local_paths():
    from model.loading import looks_local

    assert not looks_local("roberta-large") and not looks_local("FacebookAI/roberta-large")


def test_a_full_disk_at_the_first_best_model_save_is_one_line(tiny_bert, tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: args.json fits, best_model/'s tokenizer.json does not."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (6 * 1024, 6 * 1024))

    out = tmp_path / "o"
    argv = rte_argv(tiny_bert, tmp_path, out, "--do_train", "--do_eval")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "run.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True, preexec_fn=limit
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert last.startswith("error: File too large") and f"({out / 'best_model'})" in last
    assert "Free space or choose another --output_dir" in last
    assert os.path.isfile(out / "args.json")


def test_every_run_ends_by_printing_where_its_results_are(trained, capsys):
    argv, out = trained
    run.main(argv)
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert (
        printed == f"Results: {out}/best_results.json (also all_results.json, best_model, args.json in {out})"
    )


def test_trainer_output_is_ignored_by_git():
    with open(os.path.join(ROOT, ".gitignore")) as f:
        assert "trainer_output/" in f.read().split()


# -- 16. --resume_from_checkpoint is checked against the run that saved it --------------------------------------
def test_resume_from_another_folders_checkpoint_is_checked_against_its_run(trained, tmp_path):
    argv, source = trained
    checkpoint = os.path.join(source, "checkpoint-3")

    def into(folder, *flags):
        i = argv.index("--output_dir")
        return [*argv[:i], "--output_dir", str(tmp_path / folder), *argv[i + 2 :], *flags]

    with pytest.raises(run.RunFolderError, match=r"--learning_rate: 0\.005 \(recorded\) vs 0\.01 \(now\)"):
        run.main(into("other_lr", "--resume_from_checkpoint", checkpoint, "--learning_rate", "1e-2"))
    assert not os.path.exists(tmp_path / "other_lr" / "args.json")
    run.main(into("same", "--resume_from_checkpoint", checkpoint))
    assert read(tmp_path / "same", "best_results.json") == read(source, "best_results.json")
    assert read(tmp_path / "same", "train_results.json")["train_resumed_from_step"] == 3


# -- issue 34 items 4 and 5: --help order, no pin-memory warning on a CPU ---------------------------------------
def test_help_lists_the_projects_flags_first_in_sections_then_hf():
    text = arguments.build_parser().format_help()
    assert text.startswith("usage: run.py --model_name_or_path M --task_name FAMILY --dataset_name D")
    sections = [
        line[:-1] for line in text.splitlines() if line and not line.startswith(" ") and line.endswith(":")
    ]
    assert sections == [
        "options",
        "model and method",
        "data",
        "training (the project's)",
        "question answering (--task_name qa)",
        "HF TrainingArguments (transformers' own; see its docs)",
    ]
    at = {
        flag: text.index(f"\n  --{flag} ") for flag in ("prefix", "task_name", "lr_schedule", "learning_rate")
    }
    assert at["prefix"] < at["task_name"] < at["lr_schedule"] < at["learning_rate"]


def test_no_pin_memory_without_an_accelerator(tiny_bert, tmp_path):
    _, _, training_args, *_ = arguments.get_args(rte_argv(tiny_bert, tmp_path, tmp_path / "o", "--do_train"))
    assert training_args.dataloader_pin_memory is torch.accelerator.is_available()


def test_a_tiny_token_task_run_prints_no_noise_and_ends_naming_best_results(tiny_bert, tmp_path):
    """A real process: no pin_memory warning on a CPU, no UNEXPECTED-pooler load report for a token head, and
    the last line names best_results.json (issue 34 item 5)."""
    data = fixtures.conll2003(str(tmp_path / "ner"))
    out = tmp_path / "out"
    argv = ["--model_name_or_path", tiny_bert, "--task_name", "ner", "--dataset_name", "conll2003", "--data_dir",
            data, "--output_dir", str(out), "--prefix", "--pre_seq_len", "4", "--max_seq_length", "48",
            "--num_train_epochs", "1", "--report_to", "none", "--disable_tqdm", "true", "--do_train", "--do_eval"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "run.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = proc.stdout + proc.stderr
    assert "pin_memory" not in printed and "LOAD REPORT" not in printed and "UNEXPECTED" not in printed
    assert proc.stdout.strip().splitlines()[-1].startswith(f"Results: {out}/best_results.json (also ")
