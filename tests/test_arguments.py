import os
import subprocess
import sys

import pytest

from arguments import get_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BASE = "--model_name_or_path m --task_name superglue --dataset_name rte --output_dir {out}"


def test_old_evaluation_strategy_flag_is_translated(tmp_path):
    argv = BASE.format(out=tmp_path).split() + [
        "--do_train",
        "--evaluation_strategy",
        "epoch",
        "--prefix",
        "--pre_seq_len",
        "8",
    ]
    model_args, data_args, training_args, qa_args = get_args(argv)
    assert training_args.eval_strategy == "epoch"
    assert model_args.method == "prefix" and model_args.pre_seq_len == 8
    assert model_args.shift_positions is True  # the original's position shift by default


def test_prefix_and_prompt_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        get_args(BASE.format(out=tmp_path).split() + ["--prefix", "--prompt"])
    assert "--prefix and --prompt are exclusive" in capsys.readouterr().err


def test_unknown_flag_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        get_args(BASE.format(out=tmp_path).split() + ["--no_such_flag", "1"])
    assert "--no_such_flag" in capsys.readouterr().err


def test_unknown_task_name_lists_choices(tmp_path, capsys):
    argv = BASE.format(out=tmp_path).replace("superglue", "nope").split()
    with pytest.raises(SystemExit):
        get_args(argv)
    assert "choose one of: superglue, glue, ner, srl, qa" in capsys.readouterr().err


def test_squad_v2_implies_version_2(tmp_path):
    argv = BASE.format(out=tmp_path).replace("superglue", "qa").replace("rte", "squad_v2").split()
    argv += ["--max_seq_length", "384"]
    assert get_args(argv)[3].version_2_with_negative is True


def test_unknown_dataset_name_lists_the_family_choices(tmp_path, capsys):
    argv = BASE.format(out=tmp_path).replace("rte", "rtee").split()
    with pytest.raises(SystemExit):
        get_args(argv)
    err = capsys.readouterr().err
    assert "unknown --dataset_name 'rtee' for --task_name superglue" in err
    assert "boolq, cb, rte, wic, wsc, copa, multirc, record" in err


QA = "--model_name_or_path m --task_name qa --dataset_name squad --output_dir {out}"


def usage_error(argv, capsys) -> str:
    """The stderr of a refused command line: exit 2 and exactly one line."""
    with pytest.raises(SystemExit) as exc:
        get_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("value", ["0", "-5"])
@pytest.mark.parametrize("flag", ["--max_train_samples", "--max_eval_samples", "--max_predict_samples"])
def test_sample_limits_below_one_are_refused_up_front(tmp_path, capsys, flag, value):
    err = usage_error(BASE.format(out=tmp_path).split() + [flag, value], capsys)
    assert f"{flag} must be >= 1 (or left unset for all), got {value}." in err
    assert get_args(BASE.format(out=tmp_path).split() + [flag, "1"])[1].__dict__[flag[2:]] == 1


@pytest.mark.parametrize("value", ["-3", "0", "1e15", "1.5", "nan"])
def test_lr_decay_outside_zero_one_is_refused(tmp_path, capsys, value):
    argv = BASE.format(out=tmp_path).split() + ["--lr_schedule", "exponential", "--lr_decay", value]
    assert "--lr_decay must be in (0, 1]" in usage_error(argv, capsys)


def test_lr_decay_of_one_is_a_constant_schedule_and_accepted(tmp_path):
    argv = BASE.format(out=tmp_path).split() + ["--lr_decay", "1"]
    assert get_args(argv)[2].lr_decay == 1.0


@pytest.mark.parametrize(
    "extra, message",
    [
        ("--doc_stride -1", "--doc_stride must be >= 0"),
        ("--max_seq_length 0", "--max_seq_length must be >= 8"),
        ("--max_answer_length 0", "--max_answer_length must be >= 1"),
        ("--n_best_size -2", "--n_best_size must be >= 1"),
        ("--null_score_diff_threshold nan", "--null_score_diff_threshold must be a finite number"),
        ("--prefix_hidden_size 0", "--prefix_hidden_size must be >= 1"),
        ("--hidden_dropout_prob 1", "--hidden_dropout_prob must be in [0, 1)"),
        ("--hidden_dropout_prob -0.1", "--hidden_dropout_prob must be in [0, 1)"),
        ("--preprocessing_num_workers 0", "--preprocessing_num_workers must be >= 1"),
        ("--learning_rate 0", "--learning_rate must be a positive number"),
        ("--learning_rate -0.001", "--learning_rate must be a positive number"),
        ("--num_train_epochs 0", "--num_train_epochs must be > 0 (or set --max_steps)"),
        ("--per_device_train_batch_size 0", "--per_device_train_batch_size must be >= 1"),
        ("--per_device_eval_batch_size -1", "--per_device_eval_batch_size must be >= 1"),
        ("--gradient_accumulation_steps 0", "--gradient_accumulation_steps must be >= 1"),
        ("--max_seq_length 128", "--doc_stride (128) must be smaller than --max_seq_length (128)"),
    ],
)
def test_nonsensical_numbers_are_one_usage_error_naming_the_flag(tmp_path, capsys, extra, message):
    assert message in usage_error(QA.format(out=tmp_path).split() + extra.split(), capsys)


def test_shortest_qa_command_gets_qa_defaults(tmp_path):
    """`--task_name qa --dataset_name squad` alone used to stop at the stride check (128 vs 128)."""
    _, data_args, _, qa_args = get_args(QA.format(out=tmp_path).split())
    assert (data_args.max_seq_length, data_args.doc_stride) == (384, 128)  # HF run_qa's defaults
    assert (qa_args.n_best_size, qa_args.max_answer_length) == (20, 30)
    # The other families keep 128; an explicit value always wins.
    assert get_args(BASE.format(out=tmp_path).split())[1].max_seq_length == 128
    assert get_args(QA.format(out=tmp_path).split() + ["--max_seq_length", "256"])[1].max_seq_length == 256
    argv = QA.format(out=tmp_path).split() + ["--max_seq_length", "128", "--doc_stride", "32"]
    assert get_args(argv)[1].max_seq_length == 128


def test_num_train_epochs_zero_is_fine_with_max_steps(tmp_path):
    argv = BASE.format(out=tmp_path).split() + ["--num_train_epochs", "0", "--max_steps", "3"]
    assert get_args(argv)[2].max_steps == 3


def test_the_suite_keeps_caches_out_of_home(caches_in_a_tmp_dir):
    """tests/conftest.py: tokenisation caches (training/data.py reads HF_DATASETS_CACHE) and datasets' own caches
    go to the session's tmp dir, here and in subprocesses (inherited environment)."""
    import subprocess
    import sys

    import datasets.config

    from training.data import cache_dir

    home = str(caches_in_a_tmp_dir)
    assert cache_dir().startswith(home) and str(datasets.config.HF_DATASETS_CACHE).startswith(home)
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['HF_DATASETS_CACHE'], os.environ['HF_HOME'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(path.startswith(home) for path in child.stdout.split())


def test_tasks_sit_below_model_and_arguments():
    """tasks/ is the bottom layer: importing it (and every family) loads neither model/ nor arguments.py nor
    transformers, and arguments.py takes the family list and the families' own arguments from the registry."""
    code = (
        "import sys, tasks; tasks.get_task('qa', 'squad'); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'model', 'arguments', 'training', 'transformers'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    import arguments
    from tasks import registry
    from tasks.qa import QuestionAnsweringArguments

    assert arguments.FAMILIES is registry.FAMILIES
    assert registry.family_arguments() == {"qa_args": QuestionAnsweringArguments}


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            "--prefix --backbone_dtype half",
            "--backbone_dtype must be one of float32, bfloat16, float16, got 'half'.",
        ),
        (
            "--backbone_dtype bfloat16 --bf16",
            "--backbone_dtype bfloat16 needs a frozen backbone (--prefix or --prompt)",
        ),
        (  # BitFit steps the backbone's biases: they must stay float32
            "--bitfit --backbone_dtype bfloat16 --bf16",
            "--backbone_dtype bfloat16 needs a frozen backbone (--prefix or --prompt): bitfit steps backbone",
        ),
        (
            "--prefix --backbone_dtype bfloat16",
            "--backbone_dtype bfloat16 needs --bf16: autocast runs the float32",
        ),
        (
            "--prompt --backbone_dtype float16 --bf16 --use_cpu",
            "--backbone_dtype float16 needs --fp16: autocast runs the float32",
        ),
    ],
)
def test_backbone_dtype_needs_a_frozen_backbone_and_its_autocast(tmp_path, capsys, extra, message):
    assert message in usage_error(BASE.format(out=tmp_path).split() + extra.split(), capsys)


def test_backbone_dtype_with_its_autocast_is_accepted(tmp_path):
    model_args, _, training_args, _ = get_args(
        BASE.format(out=tmp_path).split()
        + ["--prefix", "--backbone_dtype", "bfloat16", "--bf16", "--use_cpu"]
    )
    assert (model_args.backbone_dtype, training_args.bf16) == ("bfloat16", True)
    assert get_args(BASE.format(out=tmp_path).split())[0].backbone_dtype == "float32"
