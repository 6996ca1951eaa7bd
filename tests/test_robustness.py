"""A researcher must be able to trust long runs: resume after kill -9, determinism, no accidental overwrites,
clear errors. Tiny random models and fixture data; subprocesses where a real process boundary matters."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import fixtures
import run
from model.config import PTuningError
from tiny import save_tiny_model
from training.run_folder import RunFolderError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def rte_dir(tmp_path_factory):
    return fixtures.superglue_rte(str(tmp_path_factory.mktemp("rte")), n_train=48, n_val=8)


def argv_for(model, data, out, *extra):
    return [
        "--model_name_or_path",
        model,
        "--task_name",
        "superglue",
        "--dataset_name",
        "rte",
        "--data_dir",
        data,
        "--output_dir",
        out,
        "--do_train",
        "--do_eval",
        "--prefix",
        "--pre_seq_len",
        "4",
        "--per_device_train_batch_size",
        "4",
        "--num_train_epochs",
        "3",
        "--eval_strategy",
        "epoch",
        "--save_strategy",
        "epoch",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--learning_rate",
        "5e-2",
        "--max_seq_length",
        "32",
        "--seed",
        "3",
        "--hidden_dropout_prob",
        "0.1",
        *extra,
    ]


def best(out):
    with open(os.path.join(out, "best_results.json")) as f:
        return json.load(f)


def test_same_seed_same_numbers_and_other_seed_differs(tiny_bert, rte_dir, tmp_path):
    a = run.main(argv_for(tiny_bert, rte_dir, str(tmp_path / "a")))
    b = run.main(argv_for(tiny_bert, rte_dir, str(tmp_path / "b")))
    c = run.main(argv_for(tiny_bert, rte_dir, str(tmp_path / "c"), "--seed", "4"))
    assert a["eval_loss"] == b["eval_loss"] and best(tmp_path / "a") == best(tmp_path / "b")
    assert a["eval_loss"] != c["eval_loss"]


def test_kill_9_then_the_same_command_resumes_to_the_same_result(tiny_bert, rte_dir, tmp_path):
    reference = str(tmp_path / "uninterrupted")
    run.main(
        argv_for(
            tiny_bert,
            rte_dir,
            reference,
            "--max_steps",
            "36",
            "--save_steps",
            "12",
            "--save_strategy",
            "steps",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "12",
        )
    )

    out = str(tmp_path / "killed")
    cmd = [
        sys.executable,
        os.path.join(ROOT, "run.py"),
        *argv_for(
            tiny_bert,
            rte_dir,
            out,
            "--max_steps",
            "36",
            "--save_steps",
            "12",
            "--save_strategy",
            "steps",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "12",
        ),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(out, "checkpoint-12", "trainer_state.json")):
        assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(out, "best_results.json"))

    resumed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming training from" in resumed.stdout + resumed.stderr
    assert best(out) == best(reference)


def test_non_empty_output_dir_is_refused_before_any_work(tiny_bert, rte_dir, tmp_path):
    out = tmp_path / "used"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(RunFolderError, match="exists and is not empty"):
        run.main(argv_for(tiny_bert, rte_dir, str(out)))
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


def test_non_finite_loss_stops_with_a_clear_message_and_no_results(tiny_bert, rte_dir, tmp_path):
    from training.trainer import NonFiniteLossError

    out = str(tmp_path / "nan")
    with pytest.raises(
        NonFiniteLossError,
        match="training loss became nan.*--overwrite_output_dir and a lower --learning_rate",
    ):
        run.main(
            argv_for(
                tiny_bert,
                rte_dir,
                out,
                "--learning_rate",
                "1e38",
                "--max_grad_norm",
                "0",
                "--hidden_dropout_prob",
                "0.0",
            )
        )
    assert not os.path.exists(os.path.join(out, "best_results.json"))
    assert not os.path.exists(os.path.join(out, "all_results.json"))
    # only the never-started run's args.json is there: the corrected rerun into the same folder is not refused
    run.main(argv_for(tiny_bert, rte_dir, out, "--num_train_epochs", "1"))
    assert best(out)["best_epoch"] == 0


def cli(*args):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "run.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def test_unknown_flag_is_one_clear_error(tiny_bert, rte_dir, tmp_path):
    result = cli(*argv_for(tiny_bert, rte_dir, str(tmp_path / "o")), "--pre_seq_lenght", "8")
    assert result.returncode != 0
    assert "unrecognised arguments: --pre_seq_lenght 8" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_names_the_expected_layout(tiny_bert, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli(*argv_for(tiny_bert, str(empty), str(tmp_path / "o")))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "error: train split not found under --data_dir" in result.stderr
    assert "expected RTE/train.jsonl or train.jsonl" in result.stderr


def test_model_path_that_does_not_exist(rte_dir, tmp_path):
    result = cli(*argv_for(str(tmp_path / "no-such-model"), rte_dir, str(tmp_path / "o")))
    assert result.returncode != 0
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--model_name_or_path {str(tmp_path / 'no-such-model')!r} is not a folder here" in result.stderr


def test_model_dir_without_tokenizer(tiny_bert, rte_dir, tmp_path):
    import shutil

    weights_only = tmp_path / "weights-only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(tiny_bert, name), weights_only / name)
    with pytest.raises(PTuningError, match="cannot load a tokenizer from"):
        run.main(argv_for(str(weights_only), rte_dir, str(tmp_path / "o")))


def test_prefix_checkpoint_from_another_backbone_is_refused(tiny_bert, rte_dir, tmp_path):
    out = str(tmp_path / "bert-run")
    run.main(argv_for(tiny_bert, rte_dir, out, "--num_train_epochs", "1"))
    roberta = save_tiny_model(str(tmp_path / "tiny-roberta"), "roberta")
    with pytest.raises(
        PTuningError, match=r"trained on another backbone or size \(model_type 'bert' vs 'roberta';"
    ):
        run.main(
            [
                "--model_name_or_path",
                roberta,
                "--task_name",
                "superglue",
                "--dataset_name",
                "rte",
                "--data_dir",
                rte_dir,
                "--output_dir",
                str(tmp_path / "ev"),
                "--do_eval",
                "--prefix",
                "--pre_seq_len",
                "4",
                "--report_to",
                "none",
                "--ptuning_checkpoint",
                os.path.join(out, "best_model"),
            ]
        )


def test_trust_remote_code_is_off_by_default(tiny_bert, rte_dir, tmp_path):
    from arguments import get_args

    model_args = get_args(argv_for(tiny_bert, rte_dir, str(tmp_path / "o")))[0]
    assert model_args.trust_remote_code is False
