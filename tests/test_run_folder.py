"""A run folder belongs to one run: fault injection for each way it used to get mixed up or lost (concurrent runs,
a rerun with other flags, an eval-only run into a training folder, --overwrite_output_dir over a finished run, a
refused run that wrote args.json, a damaged newest checkpoint, a garbage --ptuning_checkpoint, a NaN stop)."""

import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch

import fixtures
import run
import search
from model.ptuning import PTuningError
from training import flags, run_folder
from training.run_folder import RunFolderError, RunLock
from training.trainer import NonFiniteLossError, PTuningTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def rte_dir(tmp_path_factory):
    return fixtures.superglue_rte(str(tmp_path_factory.mktemp("rte")), n_train=24, n_val=8)


def argv(model, data, out, *extra):
    return [
        "--model_name_or_path", model, "--task_name", "superglue", "--dataset_name", "rte", "--data_dir", data,
        "--output_dir", out, "--do_train", "--do_eval", "--prefix", "--pre_seq_len", "4",
        "--per_device_train_batch_size", "4", "--num_train_epochs", "3", "--eval_strategy", "epoch",
        "--save_strategy", "epoch", "--report_to", "none", "--disable_tqdm", "true", "--learning_rate", "5e-2",
        "--max_seq_length", "32", "--seed", "3", *extra,
    ]  # fmt: skip


@contextlib.contextmanager
def warnings_of(name: str):
    """The warnings one logger emits, whatever earlier tests did to logging (caplog relies on propagation to the
    root logger, which a library's logging.config call can switch off for loggers that already exist)."""
    logger, stream = logging.getLogger(name), io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    saved = logger.disabled, logger.level
    logger.disabled = False
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield _Text(stream)
    finally:
        logger.removeHandler(handler)
        logger.disabled, logger.level = saved


class _Text:
    def __init__(self, stream):
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()


def read(out, name="best_results.json"):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def finished(tiny_bert, rte_dir, tmp_path_factory):
    """A finished 3-epoch run (checkpoints 6, 12, 18), copied afresh by each test that damages it."""
    out = str(tmp_path_factory.mktemp("finished") / "run")
    run.main(argv(tiny_bert, rte_dir, out))
    return out


def copy_of(finished, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(finished, out)
    return out


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_holder(tiny_bert, rte_dir, tmp_path):
    out = str(tmp_path / "busy")
    with RunLock(out):  # another run holds the folder
        with pytest.raises(RunFolderError, match=rf"in use by another run \(pid {os.getpid()} on "):
            run.main(argv(tiny_bert, rte_dir, out))
        assert os.listdir(out) == [".run.lock"]  # nothing of the refused run was written


def test_the_lock_dies_with_its_process(tmp_path):
    out = str(tmp_path / "killed")
    code = f"import sys, os; sys.path.insert(0, {ROOT!r}); from training.run_folder import RunLock; RunLock({out!r}).acquire(); os._exit(0)"  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
    assert os.path.exists(os.path.join(out, ".run.lock"))  # left behind by a process that died holding it
    with RunLock(out):  # ... and free to take
        pass
    assert not os.path.exists(os.path.join(out, ".run.lock"))


def test_rerunning_a_finished_folder_with_other_flags_is_refused(finished, tiny_bert, rte_dir, tmp_path):
    out = copy_of(finished, tmp_path)
    before_args, before_best = read(out, "args.json"), read(out)
    with pytest.raises(RunFolderError) as err:
        run.main(argv(tiny_bert, rte_dir, out, "--learning_rate", "0.5", "--seed", "7"))
    message = str(err.value)
    assert (
        "--learning_rate: 0.05 (recorded) vs 0.5 (now)" in message
        and "--seed: 3 (recorded) vs 7 (now)" in message
    )
    assert "another --output_dir" in message and "--overwrite_output_dir" in message
    assert read(out, "args.json") == before_args and read(out) == before_best


def test_rerunning_with_the_same_flags_resumes(finished, tiny_bert, rte_dir, tmp_path):
    out = copy_of(finished, tmp_path)
    best = read(out)
    run.main(argv(tiny_bert, rte_dir, out, "--logging_steps", "3"))  # logging does not change results
    assert read(out) == best


def test_an_eval_only_run_never_rewrites_a_training_folder(finished, tiny_bert, rte_dir, tmp_path):
    out = copy_of(finished, tmp_path)
    before = {name: open(os.path.join(out, name)).read() for name in ("args.json", "best_results.json", "eval_results.json")}  # fmt: skip
    eval_only = [a for a in argv(tiny_bert, rte_dir, out) if a != "--do_train"]
    with pytest.raises(RunFolderError, match="holds a training run.*another --output_dir"):
        run.main([*eval_only, "--ptuning_checkpoint", os.path.join(out, "best_model")])
    assert {name: open(os.path.join(out, name)).read() for name in before} == before
    # into its own folder it works, and reproduces the training run's best dev score
    eval_out = str(tmp_path / "eval")
    results = run.main(
        [*eval_only, "--ptuning_checkpoint", os.path.join(out, "best_model"), "--output_dir", eval_out]
    )
    assert results["eval_accuracy"] == read(out)["best_eval_accuracy"]


def test_overwrite_output_dir_removes_the_previous_run_and_keeps_other_files(
    finished, tiny_bert, rte_dir, tmp_path
):
    out = copy_of(finished, tmp_path)
    assert "model.safetensors" in os.listdir(out)  # its own weights, beside its args.json: still overwritable
    with open(os.path.join(out, "notes.txt"), "w") as f:
        f.write("keep me")
    run.main(argv(tiny_bert, rte_dir, out, "--overwrite_output_dir", "--save_strategy", "no", "--eval_strategy", "no",
                  "--learning_rate", "0.5", "--num_train_epochs", "1"))  # fmt: skip
    left = sorted(os.listdir(out))
    assert "notes.txt" in left and "best_results.json" not in left and "best_model" not in left
    assert not [e for e in left if e.startswith("checkpoint-")] and "eval_results.json" in left
    assert read(out, "args.json")["training_args"]["learning_rate"] == 0.5


def test_a_refused_prefix_length_writes_nothing_so_the_corrected_rerun_runs(tiny_bert, rte_dir, tmp_path):
    out = str(tmp_path / "too-long")
    with pytest.raises(PTuningError, match="exceeds the 512 positions"):
        run.main(argv(tiny_bert, rte_dir, out, "--pre_seq_len", "500", "--num_train_epochs", "1"))
    assert not os.path.exists(out) or os.listdir(out) == []
    run.main(argv(tiny_bert, rte_dir, out, "--pre_seq_len", "8", "--num_train_epochs", "1"))
    assert os.path.exists(os.path.join(out, "best_results.json"))


def flip_a_byte_inside_a_member(path):
    """Bit-rot in a torch.save zip archive: one byte of its largest member's data inverted (sizes intact, CRC not)."""
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda info: info.file_size)
    with open(path, "r+b") as f:
        f.seek(member.header_offset + 26)
        name_len, extra_len = (int.from_bytes(f.read(2), "little") for _ in range(2))
        at = member.header_offset + 30 + name_len + extra_len + member.file_size // 2
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0xFF]))


def wipe_the_meta_record(path):
    """Bit-rot in model.safetensors: the ptuning_meta record's bytes set to 0xff (header and size intact)."""
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        start, end = json.loads(f.read(header_len))["ptuning_meta"]["data_offsets"]
    with open(path, "r+b") as f:
        f.seek(8 + header_len + start)
        f.write(b"\xff" * (end - start))


# damage -> (what to do to checkpoint-18, the problem the warning names)
DAMAGES = {
    "truncated": (lambda c: truncate(os.path.join(c, "model.safetensors")), "model.safetensors is truncated"),
    "half_written": (
        lambda c: os.remove(os.path.join(c, "trainer_state.json")),
        "trainer_state.json unreadable",
    ),
    "rng_state_truncated": (
        lambda c: truncate(os.path.join(c, "rng_state.pth"), 100),
        "rng_state.pth is damaged",
    ),
    "rng_state_bit_flip": (
        lambda c: flip_a_byte_inside_a_member(os.path.join(c, "rng_state.pth")),
        "rng_state.pth is damaged",
    ),
    "meta_record": (
        lambda c: wipe_the_meta_record(os.path.join(c, "model.safetensors")),
        "model.safetensors holds a damaged ptuning_meta record",
    ),
    "empty_state": (  # valid JSON, but not a Trainer state: HF's resume would fail with a KeyError
        lambda c: open(os.path.join(c, "trainer_state.json"), "w").write("{}"),
        "trainer_state.json holds no global_step",
    ),
}


def truncate(path, size=None):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2 if size is None else size)


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_resume_skips_a_damaged_newest_checkpoint(finished, tiny_bert, rte_dir, tmp_path, damage):
    out = copy_of(finished, tmp_path)
    reference = read(out)
    for name in ("best_results.json", "all_results.json", "train_results.json", "eval_results.json"):
        os.remove(os.path.join(out, name))  # as if killed during the last save
    newest = os.path.join(out, "checkpoint-18")
    damage_it, problem = DAMAGES[damage]
    damage_it(newest)
    assert run_folder.checkpoint_problem(newest).startswith(problem)
    with warnings_of("training.run_folder") as logged:
        run.main(argv(tiny_bert, rte_dir, out))
    assert f"Skipping the damaged checkpoint {newest}: {problem}" in logged.text
    assert "Resuming training from " + os.path.join(out, "checkpoint-12") in logged.text
    assert "trying an older one" in logged.text
    assert read(out) == reference  # the same result as the uninterrupted run


def test_when_every_checkpoint_is_damaged_the_warning_says_none_is_left(
    finished, tiny_bert, rte_dir, tmp_path
):
    out = copy_of(finished, tmp_path)
    checkpoints = sorted(e for e in os.listdir(out) if e.startswith("checkpoint-"))
    for name in checkpoints:
        os.remove(os.path.join(out, name, "trainer_state.json"))
    with (
        warnings_of("training.run_folder") as logged,
        pytest.raises(RunFolderError, match="no intact checkpoint"),
    ):
        run.main(argv(tiny_bert, rte_dir, out))
    oldest = os.path.join(out, min(checkpoints, key=lambda e: int(e.split("-")[1])))
    assert (
        f"Skipping the damaged checkpoint {oldest}: trainer_state.json unreadable (FileNotFoundError); no older "
        "checkpoint is left." in logged.text
    )
    assert logged.text.count("trying an older one") == len(checkpoints) - 1


def test_rerunning_with_another_ptuning_checkpoint_is_refused(finished, tiny_bert, rte_dir, tmp_path):
    """--ptuning_checkpoint is a training run's starting point: resuming a run that started elsewhere would mix two
    runs (reliability-2 N14)."""
    out = copy_of(finished, tmp_path)
    before = read(out, "args.json")
    start = os.path.join(finished, "best_model")
    with pytest.raises(
        RunFolderError, match=rf"--ptuning_checkpoint: None \(recorded\) vs '{start}' \(now\)"
    ):
        run.main(argv(tiny_bert, rte_dir, out, "--ptuning_checkpoint", start))
    assert read(out, "args.json") == before


def test_a_sweep_takes_a_finished_run_for_its_own_only_with_the_same_arguments(tiny_bert, rte_dir, tmp_path):
    """search.py --same-args parses the sweep's run.py flags with run.py's parser: the payload equals the args.json
    run.py wrote (metric_for_best_model resolved as run.py resolves it), and a left-out flag is a difference."""
    out = str(tmp_path / "best-at-end")
    flags = argv(tiny_bert, rte_dir, out, "--num_train_epochs", "1", "--load_best_model_at_end")
    run.main(flags)
    assert read(out, "args.json")["training_args"]["metric_for_best_model"] == "accuracy"
    i = flags.index("--output_dir")
    sweep = flags[:i] + flags[i + 2 :]  # search.sh adds --output_dir to the run.py call only
    assert search.args_differences(out, sweep) == []
    assert search.args_differences(out, [*sweep, "--weight_decay", "0.1"]) == [
        "--weight_decay: recorded 0.0, this sweep '0.1'"
    ]
    i = sweep.index("--max_seq_length")
    assert search.args_differences(out, sweep[:i] + sweep[i + 2 :]) == [
        "--max_seq_length: recorded 32, this sweep leaves the default 128"
    ]


def test_an_explicit_checkpoint_is_checked_against_its_own_run(finished, tmp_path):
    """--resume_from_checkpoint OTHER/checkpoint-N: compared with OTHER/args.json by the identity rule (N13)."""
    recorded = run_folder.read_args(finished)
    checkpoint = os.path.join(finished, "checkpoint-12")
    fresh = str(tmp_path / "fresh")

    def args(**training):
        return {**recorded, "training_args": {**recorded["training_args"], "output_dir": fresh, **training}}

    claim = run_folder.claim_for_training
    assert claim(fresh, False, args()) is None  # no --resume_from_checkpoint: as before
    assert claim(fresh, False, args(), resume_from_checkpoint=checkpoint) == checkpoint
    with pytest.raises(RunFolderError) as err:
        claim(fresh, False, args(learning_rate=0.5), resume_from_checkpoint=checkpoint)
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        f"--resume_from_checkpoint {checkpoint!r} belongs to a run"
    )
    assert (
        os.path.join(finished, "args.json") in message
        and "--learning_rate: 0.05 (recorded) vs 0.5 (now)" in message
    )
    # a checkpoint whose run has no args.json to check against
    orphan = str(tmp_path / "orphan" / "checkpoint-12")
    shutil.copytree(checkpoint, orphan)
    with pytest.raises(RunFolderError, match=r"its run folder .*orphan' has no readable args.json"):
        claim(fresh, False, args(), resume_from_checkpoint=orphan)
    # a damaged one, one that is not there
    truncate(os.path.join(orphan, "rng_state.pth"), 100)
    with pytest.raises(RunFolderError, match="cannot be resumed from: rng_state.pth is damaged"):
        claim(fresh, False, args(), resume_from_checkpoint=orphan)
    with pytest.raises(RunFolderError, match="is not a folder"):
        claim(fresh, False, args(), resume_from_checkpoint=str(tmp_path / "nothing"))


def test_an_explicit_checkpoint_survives_overwrite_or_is_refused(finished, tmp_path):
    out = copy_of(finished, tmp_path)
    recorded = run_folder.read_args(out)
    claim = run_folder.claim_for_training
    inside = os.path.join(out, "checkpoint-12")
    with pytest.raises(
        RunFolderError, match="which --overwrite_output_dir would clear before resuming from it"
    ):
        claim(out, True, recorded, resume_from_checkpoint=inside)
    assert os.path.isdir(inside)
    # HF's True (on the command line: "True") = the newest checkpoint of output_dir; the identity rule still applies
    assert claim(out, False, recorded, resume_from_checkpoint="True") == os.path.join(out, "checkpoint-18")
    with pytest.raises(RunFolderError, match="resumes the newest checkpoint of .* which holds none"):
        claim(str(tmp_path / "empty"), False, recorded, resume_from_checkpoint=True)
    with pytest.raises(RunFolderError, match="which --overwrite_output_dir would delete"):
        claim(out, True, recorded, resume_from_checkpoint="true")


def test_overwrite_output_dir_refuses_a_model_folder(tiny_bert, rte_dir, tmp_path):
    """--output_dir = a copy of a HF backbone with --overwrite_output_dir: its model.safetensors would be replaced
    by this run's prefix (reliability-2 N16)."""
    out = str(tmp_path / "backbone")
    shutil.copytree(tiny_bert, out)
    before = {name: open(os.path.join(out, name), "rb").read() for name in os.listdir(out)}
    with pytest.raises(RunFolderError) as err:
        run.main(argv(tiny_bert, rte_dir, out, "--overwrite_output_dir"))
    message = str(err.value)
    assert "\n" not in message and "holds a model (config.json, model.safetensors" in message
    assert message.endswith("choose another --output_dir.")
    assert {name: open(os.path.join(out, name), "rb").read() for name in os.listdir(out)} == before


def test_a_garbage_ptuning_checkpoint_is_one_error_naming_the_file(finished, tiny_bert, rte_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(os.urandom(5000))
    eval_only = [a for a in argv(tiny_bert, rte_dir, str(tmp_path / "eval")) if a != "--do_train"]
    with pytest.raises(
        PTuningError,
        match=rf"{bad / 'model.safetensors'} cannot be read \(.*\): it is damaged or not a safetensors file",
    ):
        run.main([*eval_only, "--ptuning_checkpoint", str(bad)])


def test_a_nan_stop_keeps_the_finished_epochs_and_the_advised_rerun_recovers(
    tiny_bert, rte_dir, tmp_path, monkeypatch
):
    out = str(tmp_path / "nan")
    compute_loss = PTuningTrainer.compute_loss
    monkeypatch.setattr(PTuningTrainer, "compute_loss", _nan_after(compute_loss, step=8))
    with pytest.raises(NonFiniteLossError) as err:
        run.main(argv(tiny_bert, rte_dir, out))
    message = str(err.value)
    assert "became nan at step 9 (epoch 2)" in message
    assert "rerun the same command with --overwrite_output_dir and a lower --learning_rate (e.g. --learning_rate 0.005)" in message  # fmt: skip
    stopped = read(out)
    assert stopped["best_epoch"] == 0 and "stopped" in stopped and "best_eval_accuracy" in stopped
    monkeypatch.setattr(PTuningTrainer, "compute_loss", compute_loss)
    run.main(argv(tiny_bert, rte_dir, out, "--overwrite_output_dir", "--learning_rate", "0.005"))
    assert "stopped" not in read(out) and read(out, "args.json")["training_args"]["learning_rate"] == 0.005


def _nan_after(compute_loss, step):
    def patched(self, model, inputs, return_outputs=False, **kwargs):
        if model.training and self.state.global_step >= step:
            inputs = dict(inputs)
            model_forward = model.forward

            def nan_forward(*a, **k):
                output = model_forward(*a, **k)
                output.loss = output.loss * float("nan")
                return output

            model.forward = nan_forward
            try:
                return compute_loss(self, model, inputs, return_outputs=return_outputs, **kwargs)
            finally:
                del model.forward
        return compute_loss(self, model, inputs, return_outputs=return_outputs, **kwargs)

    return patched


def test_identity_ignores_what_does_not_change_results():
    recorded = {
        "model_args": {"pre_seq_len": 4},
        "training_args": {"learning_rate": 0.01, "logging_steps": 5},
    }
    same = {"model_args": {"pre_seq_len": 4}, "training_args": {"learning_rate": 0.01, "logging_steps": 50}}
    other = {"model_args": {"pre_seq_len": 8}, "training_args": {"learning_rate": 0.01, "logging_steps": 5}}
    assert flags.identity_differences(recorded, same) == []
    assert flags.identity_differences(recorded, other) == ["--pre_seq_len: 4 (recorded) vs 8 (now)"]
    newer = {
        "model_args": {"pre_seq_len": 4, "prefix_init": "normal"},
        "training_args": {"learning_rate": 0.01},
    }
    assert flags.identity_differences(recorded, newer) == []  # a flag added since the run was started


def test_safetensors_problem_reads_header_and_length(tmp_path):
    from safetensors.torch import save_file

    path = str(tmp_path / "ok.safetensors")
    save_file({"w": torch.ones(100)}, path)
    assert run_folder.safetensors_problem(path) is None
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 10)
    assert run_folder.safetensors_problem(path) == "is truncated"


def test_a_loss_that_explodes_without_nan_is_warned_about_with_its_epoch(tiny_bert, rte_dir, tmp_path):
    with warnings_of("training.trainer") as logged:
        run.main(argv(tiny_bert, rte_dir, str(tmp_path / "boom"), "--learning_rate", "1e6", "--logging_steps", "2",
                      "--num_train_epochs", "2", "--save_strategy", "no"))  # fmt: skip
    assert "the run is diverging" in logged.text and "at epoch 1," in logged.text
