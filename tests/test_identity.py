"""The identity rule (training/flags.py): every recorded argument that can change a run's results is compared,
both when a run resumes a folder (identity_differences) and when a sweep asks whether a finished folder is the run it
would start (args_differences, through run.py's own parser). Only a reviewed set of arguments is exempt."""

import copy
import dataclasses
import json
import os

import pytest

from arguments import args_payload, build_parser, get_args, save_args
from search import args_differences, run_payload
from training import run_folder
from training.flags import NOT_IDENTITY, identity_differences

BASE = "--model_name_or_path m --task_name superglue --dataset_name rte --do_train --prefix".split()

# Reviewed field by field: arguments that do not change what a run computes (logging, saving, the Hub, evaluation
# beside training, speed-only knobs, flags accepted and ignored). A field added to this set must be argued for here.
REVIEWED = {
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint",
    "logging_dir", "logging_steps", "logging_strategy", "logging_first_step", "log_level", "log_level_replica",
    "log_on_each_node", "report_to", "disable_tqdm", "run_name", "project", "trackio_space_id",
    "trackio_bucket_id", "trackio_static_space_id", "include_num_input_tokens_seen", "skip_memory_metrics",
    "save_strategy", "save_steps", "save_total_limit", "save_on_each_node", "enable_jit_checkpoint", "push_to_hub",
    "hub_model_id", "hub_token", "hub_private_repo", "hub_strategy", "hub_always_push", "hub_revision",
    "do_eval", "do_predict", "per_device_eval_batch_size", "eval_accumulation_steps", "eval_on_start",
    "eval_test_every_epoch", "group_eval_by_length", "max_predict_samples", "test_file",
    "cache_dir", "overwrite_cache", "preprocessing_num_workers", "dataloader_num_workers", "dataloader_pin_memory",
    "dataloader_persistent_workers", "dataloader_prefetch_factor", "dataloader_multiprocessing_context",
    "torch_empty_cache_steps", "local_rank", "ddp_backend", "ddp_timeout", "ddp_find_unused_parameters",
    "ddp_bucket_cap_mb",
    "use_auth_token", "dataset_config_name",
    "method",
}  # fmt: skip
# in REVIEWED but not a field of today's dataclasses: recorded by older transformers / derived from other flags
NOT_FIELDS = {"logging_dir", "method"}


def fields():
    """{field name: dataclass} over every dataclass run.py parses (the three standard ones and each family's)."""
    return {f.name: cls for cls in build_parser().dataclass_types for f in dataclasses.fields(cls) if f.init}


def other_value(value):
    """A value of the same JSON kind that differs from `value`."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, list):
        return [*value, "other"]
    if isinstance(value, dict):
        return {**value, "other": 1}
    assert value is None
    return "other"


@pytest.fixture(scope="module")
def baseline():
    return run_payload(BASE)


def test_not_identity_is_exactly_the_reviewed_set():
    assert set(NOT_IDENTITY) == REVIEWED
    # and names real arguments: a misspelt name would exempt nothing and hide the one it meant
    assert REVIEWED - NOT_FIELDS <= set(fields())
    assert "ptuning_checkpoint" not in NOT_IDENTITY  # a training run's starting point (reliability-2 N14)


def test_every_field_is_recorded_and_every_unreviewed_one_is_compared(baseline):
    recorded = {key: section for section, group in baseline.items() for key in group}
    missing = set(fields()) - set(recorded)
    assert not missing, f"not recorded in args.json: {sorted(missing)}"
    compared = []
    for name in sorted(fields()):
        changed = copy.deepcopy(baseline)
        section = changed[recorded[name]]
        section[name] = other_value(section[name])
        reported = [line for line in identity_differences(baseline, changed) if line.startswith(f"--{name}:")]
        if name in REVIEWED:
            assert identity_differences(baseline, changed) == [], name
        else:
            assert reported, f"--{name} changes results but identity_differences does not report it"
            compared.append(name)
    assert len(compared) > 100  # the rule covers HF's TrainingArguments too, not a hand-picked few


# Result-changing flags a sweep (or a resumed run) may leave out; recorded with a non-default value, each must be
# reported. (transformers 5 has no --warmup_ratio: --warmup_steps below 1 is the ratio.)
EXPLICIT = [
    ("per_device_train_batch_size", ["--per_device_train_batch_size", "16"], []),
    ("weight_decay", ["--weight_decay", "0.01"], []),
    ("max_seq_length", ["--max_seq_length", "64"], []),
    ("prefix_init", ["--prefix_init", "tokens"], []),
    ("prefix_dropout", ["--prefix_dropout", "0.3"], []),
    ("backbone_dtype", ["--backbone_dtype", "bfloat16"], ["--bf16", "--use_cpu"]),
    ("lr_schedule", ["--lr_schedule", "exponential"], []),
    ("warmup_steps", ["--warmup_steps", "0.1"], []),
    ("lr_decay", ["--lr_decay", "0.9"], []),
    ("prefix_projection", ["--prefix_projection"], []),
    ("pre_seq_len", ["--pre_seq_len", "16"], []),
]


@pytest.mark.parametrize(("name", "flags", "common"), EXPLICIT, ids=[case[0] for case in EXPLICIT])
def test_a_recorded_non_default_flag_is_a_difference_on_resume_and_for_a_sweep(tmp_path, name, flags, common):
    recorded_argv, sweep_argv = [*BASE, *common, *flags], [*BASE, *common]
    recorded, current = run_payload(recorded_argv), run_payload(sweep_argv)
    assert [line.split(":")[0] for line in identity_differences(recorded, current)] == [f"--{name}"]
    run = str(tmp_path / "run")
    save_args(run, *get_args([*recorded_argv, "--output_dir", run]))
    (line,) = args_differences(run, sweep_argv)  # the sweep leaves the flag out: not its run
    assert line.startswith(f"--{name}: recorded ") and ", this sweep leaves the default " in line
    assert args_differences(run, [*sweep_argv, *flags]) == []  # the sweep that passes it: its run


def test_a_ptuning_checkpoint_is_a_difference_when_training(tmp_path, baseline):
    start = tmp_path / "start"
    start.mkdir()
    (start / "model.safetensors").write_bytes(b"")  # arguments.py only checks that it exists
    warm = run_payload([*BASE, "--ptuning_checkpoint", str(start)])
    assert identity_differences(baseline, warm) == [
        f"--ptuning_checkpoint: None (recorded) vs {str(start)!r} (now)"
    ]


def test_sweep_messages_quote_the_flag_as_given(tmp_path):
    run = str(tmp_path / "run")
    save_args(run, *get_args([*BASE, "--hidden_dropout_prob", "0.1", "--output_dir", run]))
    sweep = [a for a in BASE if a != "--prefix"] + [
        "--prompt",
        "--hidden_dropout_prob",
        "0.3",
        "--no_shift_positions",
    ]
    assert args_differences(run, sweep) == [
        "--hidden_dropout_prob: recorded 0.1, this sweep '0.3'",
        "--prefix: recorded True, this sweep leaves the default False",
        "--prompt: recorded False, this sweep 'True'",
        "--shift_positions: recorded True, this sweep 'False'",
    ]
    # output paths, overwrite and logging flags differ between sweep cells by design; old spellings are translated
    same = [*BASE, "--hidden_dropout_prob", "0.1", "--output_dir", "x", "--overwrite_output_dir", "--logging_steps",
            "7", "--evaluation_strategy=no"]  # fmt: skip
    assert args_differences(run, same) == []


def test_a_sweep_compares_which_test_scores_a_finished_folder_holds(tmp_path):
    """--do_predict changes no training (a resumed run may add it), but a folder a sweep skips as done must already
    hold the test scores the sweep asks for."""
    run = str(tmp_path / "run")
    save_args(run, *get_args([*BASE, "--output_dir", run]))
    assert identity_differences(run_folder.read_args(run), run_payload([*BASE, "--do_predict"])) == []
    assert args_differences(run, [*BASE, "--do_predict"]) == [
        "--do_predict: recorded False, this sweep 'True'"
    ]


def test_a_flag_one_version_lacks_is_no_difference_but_args_it_cannot_parse_are(tmp_path):
    run = str(tmp_path / "run")
    payload = args_payload(*get_args([*BASE, "--output_dir", run]))
    del payload["model_args"]["prefix_init"]  # written before --prefix_init existed
    payload["training_args"]["evaluation_strategy"] = "epoch"  # a flag transformers has since removed
    os.makedirs(run)
    with open(os.path.join(run, "args.json"), "w") as f:
        json.dump(payload, f, default=str)
    assert args_differences(run, BASE) == []
    (line,) = args_differences(run, [*BASE, "--no_such_flag", "1"])
    assert line.startswith("run.py refuses these flags: unrecognised arguments: --no_such_flag 1")
    (tmp_path / "run" / "args.json").write_text("[1, 2]")  # not an args.json payload
    assert args_differences(run, BASE) is None
