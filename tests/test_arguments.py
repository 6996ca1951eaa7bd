import pytest

from arguments import get_args

BASE = "--model_name_or_path m --task_name superglue --dataset_name rte --output_dir {out}"


def test_old_evaluation_strategy_flag_is_translated(tmp_path):
    argv = BASE.format(out=tmp_path).split() + [
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
