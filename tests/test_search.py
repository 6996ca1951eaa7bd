"""search.py on synthetic search folders written here: args.json from the real save_args, best_results.json by hand."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

import search
from arguments import get_args, save_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_run(
    folder,
    results,
    lr=5e-3,
    psl=8,
    epochs=20,
    seed=11,
    task="superglue",
    dataset="copa",
    extra=(),
    model="roberta-large",
):
    """A finished run: args.json as run.py writes it, and best_results.json = `results` (a dict or raw text)."""
    argv = [
        *("--model_name_or_path", model, "--task_name", task, "--dataset_name", dataset),
        *("--output_dir", str(folder), "--learning_rate", str(lr), "--pre_seq_len", str(psl)),
        *("--num_train_epochs", str(epochs), "--seed", str(seed), "--per_device_train_batch_size", "16"),
        *("--do_train", "--prefix"),
        *extra,
    ]
    save_args(str(folder), *get_args(argv))
    if results is not None:
        text = results if isinstance(results, str) else json.dumps(results)
        (folder / "best_results.json").write_text(text)
    return folder


def acc(value, epoch=1):
    return {"best_epoch": epoch, "best_eval_accuracy": value, "best_eval_loss": 0.5}


@pytest.fixture
def search_dir(tmp_path):
    d = tmp_path / "copa-roberta-search"
    d.mkdir()
    return d


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_picks_the_best_run_and_reports_hyperparameters_from_args_json(tmp_path, search_dir, capsys):
    # Folder names lie on purpose: the hyper-parameters must come from args.json.
    make_run(search_dir / "copa-20-5e-3-4", acc(0.70), lr=5e-3, psl=4, epochs=20)
    make_run(search_dir / "copa-40-5e-3-4", acc(0.92, epoch=78), lr=9e-3, psl=16, epochs=120, seed=44)
    make_run(search_dir / "copa-60-5e-3-4", acc(0.85), lr=1e-2, psl=8, epochs=60)

    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    # Three configurations of one seed each: the best mean is the best run, std '-'.
    assert out[0] == "best configuration, by mean accuracy over seeds: 0.9200 ± - (n=1, seeds 44)"
    assert out[1] == "best_accuracy: 0.92"
    assert json.loads(out[2]) == acc(0.92, epoch=78)
    assert out[3] == str(search_dir / "copa-40-5e-3-4" / "best_results.json")
    assert out[4] == (
        "hyper-parameters (args.json): learning_rate=0.009 pre_seq_len=16 num_train_epochs=120 "
        "seed=44 per_device_train_batch_size=16 hidden_dropout_prob=0.1 prefix_projection=False method=prefix "
        "backbone=roberta-large"
    )
    configs = out[
        out.index("configurations (3), by mean best_eval_accuracy over seeds (highest first):") + 1 :
    ][:4]
    assert configs[0].split() == "# mean ± std n lr psl epochs bs dropout proj method backbone seeds".split()
    assert [line.split()[:4] for line in configs[1:]] == [
        ["1", "0.9200", "±", "-"],
        ["2", "0.8500", "±", "-"],
        ["3", "0.7000", "±", "-"],
    ]
    title = "all 3 runs, by configuration (config: its # above), then by best_eval_accuracy (highest first):"
    table = out[out.index(title) + 1 :][:4]
    assert (
        table[0].split()
        == "accuracy best_epoch lr psl epochs seed bs dropout proj method backbone config run".split()
    )
    assert [line.split() for line in table[1:]] == [
        "0.92 78 0.009 16 120 44 16 0.1 False prefix roberta-large 1 copa-40-5e-3-4".split(),
        "0.85 1 0.01 8 60 11 16 0.1 False prefix roberta-large 2 copa-60-5e-3-4".split(),
        "0.7 1 0.005 4 20 11 16 0.1 False prefix roberta-large 3 copa-20-5e-3-4".split(),
    ]


def test_csv_rows_equal_the_runs_sorted_by_metric(tmp_path, search_dir, capsys):
    make_run(search_dir / "a", acc(0.6), lr=5e-3, psl=4)
    make_run(search_dir / "b", acc(0.8), lr=7e-3, psl=8)
    make_run(search_dir / "c", acc(0.7), lr=1e-2, psl=16, extra=("--prefix_projection",))
    assert search.main(["copa", "roberta", "--root", str(tmp_path), "--csv", str(tmp_path / "t.csv")]) == 0
    rows = read_csv(tmp_path / "t.csv")
    got = [
        (
            r["run"],
            float(r["accuracy"]),
            float(r["learning_rate"]),
            int(r["pre_seq_len"]),
            r["prefix_projection"],
        )
        for r in rows
    ]
    assert got == [("b", 0.8, 7e-3, 8, "False"), ("c", 0.7, 1e-2, 16, "True"), ("a", 0.6, 5e-3, 4, "False")]
    assert [r["path"] for r in rows] == [str(search_dir / n) for n in "bca"]
    assert {r["method"] for r in rows} == {"prefix"} and {r["best_epoch"] for r in rows} == {"1"}
    # Default CSV location: inside the search folder.
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    assert read_csv(search_dir / "runs.csv") == rows


def test_ties_go_to_more_seeds_then_to_the_first_run_in_path_order(tmp_path, search_dir, capsys):
    # Created in reverse order, so neither creation time nor os.listdir order can explain the choice.
    make_run(search_dir / "run-b", acc(0.9), lr=7e-3)
    make_run(search_dir / "run-a", acc(0.9), lr=5e-3)
    make_run(search_dir / "run-c", acc(0.5), lr=1e-2)
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[3] == str(search_dir / "run-a" / "best_results.json")
    assert (
        "tie: 2 configurations share the best mean with as many seeds (their best runs: run-a, run-b); the first "
        "in path order is reported"
    ) in out
    assert [r["run"] for r in read_csv(search_dir / "runs.csv")] == ["run-a", "run-b", "run-c"]
    # A second seed of run-b's configuration, as good: mean 0.9 with n=2 beats run-a's 0.9 with n=1, and the two
    # seeds tie (run-b first in path order).
    make_run(search_dir / "run-d", acc(0.9), lr=7e-3, seed=12)
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[0]
        == "best configuration, by mean accuracy over seeds: 0.9000 ± 0.0000 (n=2, seeds 11 12)"
    )
    assert out.splitlines()[3] == str(search_dir / "run-b" / "best_results.json")
    assert "tie: 2 runs share the best value (run-b, run-d); the first in path order is reported" in out
    assert "configurations share" not in out
    assert [r["run"] for r in read_csv(search_dir / "runs.csv")] == ["run-b", "run-d", "run-a", "run-c"]


def test_corrupt_missing_and_metric_less_results_are_skipped_with_a_warning(tmp_path, search_dir, capsys):
    make_run(search_dir / "good", acc(0.6))
    make_run(search_dir / "corrupt", '{"best_epoch": 3, "best_eval_accur')
    make_run(search_dir / "unfinished", None)
    make_run(search_dir / "other-metric", {"best_epoch": 2, "best_eval_f1": 0.99})
    make_run(search_dir / "not-a-number", {"best_epoch": 2, "best_eval_accuracy": "0.99"})
    make_run(search_dir / "nan", '{"best_epoch": 2, "best_eval_accuracy": NaN}')
    (search_dir / "no-args").mkdir()
    (search_dir / "no-args" / "best_results.json").write_text(json.dumps(acc(0.4)))

    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1] == "best_accuracy: 0.6"
    err = captured.err
    assert f"skipping {search_dir / 'corrupt' / 'best_results.json'}: unreadable" in err
    assert f"skipping {search_dir / 'unfinished'}: no best_results.json" in err
    assert (
        f"skipping {search_dir / 'other-metric' / 'best_results.json'}: no numeric 'best_eval_accuracy'"
        in err
    )
    assert f"skipping {search_dir / 'not-a-number' / 'best_results.json'}" in err
    assert f"skipping {search_dir / 'nan' / 'best_results.json'}" in err
    assert f"{search_dir / 'no-args'}: hyper-parameters unknown" in err
    rows = read_csv(search_dir / "runs.csv")
    assert [(r["run"], r["learning_rate"]) for r in rows] == [("good", "0.005"), ("no-args", "")]


def test_no_runs_is_an_error(tmp_path, capsys):
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 1
    assert "error: no run of copa-roberta" in capsys.readouterr().err
    d = tmp_path / "copa-roberta-search" / "broken"
    d.mkdir(parents=True)
    (d / "best_results.json").write_text("not json")
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 1
    assert not (tmp_path / "copa-roberta-search" / "runs.csv").exists()


def test_default_metric_comes_from_the_registry(tmp_path, monkeypatch, capsys):
    import tasks.registry

    asked = []

    def fake_get_task(family, name):
        asked.append((family, name))
        return SimpleNamespace(main_metric="f1a")

    monkeypatch.setattr(tasks.registry, "get_task", fake_get_task)
    d = tmp_path / "multirc-roberta-search"
    d.mkdir()
    make_run(d / "x", {"best_epoch": 0, "best_eval_f1a": 0.7, "best_eval_accuracy": 0.9}, dataset="multirc")
    make_run(d / "y", {"best_epoch": 0, "best_eval_f1a": 0.8, "best_eval_accuracy": 0.1}, dataset="multirc")
    assert search.main(["multirc", "roberta", "--root", str(tmp_path)]) == 0
    assert asked == [("superglue", "multirc")]
    assert capsys.readouterr().out.splitlines()[1] == "best_f1a: 0.8"
    # An explicit METRIC always wins and the registry is not asked.
    assert search.main(["multirc", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    assert asked == [("superglue", "multirc")]
    assert capsys.readouterr().out.splitlines()[1] == "best_accuracy: 0.9"


def test_default_metric_without_a_known_task_asks_the_registry_by_dataset_name(tmp_path, capsys):
    """No args.json (or one naming a task this checkout does not register): the main metric of the datasets
    registered under that name (the registry imports without model/ or transformers, so it is always there)."""
    d = tmp_path / "conll2003-bert-search"
    d.mkdir()
    make_run(
        d / "r", {"best_epoch": 4, "best_eval_f1": 0.91, "best_test_f1": 0.9}, task="ner", dataset="conll2003"
    )
    args = json.loads((d / "r" / "args.json").read_text())
    args["data_args"]["task_name"] = "no_such_family"
    (d / "r" / "args.json").write_text(json.dumps(args))
    assert search.main(["conll2003", "bert", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1] == "best_f1: 0.91"
    assert "unknown --task_name 'no_such_family'" in captured.err
    assert search.default_metric("rte", None) == "accuracy"  # GLUE's and SuperGLUE's rte agree
    assert search.default_metric("squad", None) == "f1"
    assert search.default_metric("cola", None) == "matthews_correlation"
    assert search.default_metric("not_registered", None) == "f1"


def test_configurations_are_ranked_by_their_mean_over_seeds(tmp_path, search_dir, capsys):
    make_run(search_dir / "s1", acc(0.80), seed=1)
    make_run(search_dir / "s2", acc(0.90), seed=2)
    make_run(search_dir / "s3", acc(0.85), seed=3)
    make_run(search_dir / "other", acc(0.95), lr=1e-2, seed=1)  # one seed only: n=1, no std
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    # By mean, as asked: one run of 0.95 is a mean of 0.95, above 0.85 (n=1 says how little it rests on).
    assert out[0] == "best configuration, by mean accuracy over seeds: 0.9500 ± - (n=1, seeds 1)"
    assert "warning: the best configuration was run with one seed" in captured.err
    configs = out[
        out.index("configurations (2), by mean best_eval_accuracy over seeds (highest first):") + 2 :
    ][:2]
    # 0.80, 0.90, 0.85: mean 0.85, sample std sqrt((0.05² + 0.05² + 0²) / 2) = 0.05.
    assert [line.split()[:6] for line in configs] == [
        ["1", "0.9500", "±", "-", "1", "0.01"],
        ["2", "0.8500", "±", "0.0500", "3", "0.005"],
    ]
    assert configs[1].endswith("1 2 3")


def test_any_folder_of_runs_when_there_is_no_search_folder(tmp_path, capsys):
    make_run(tmp_path / "sweep" / "one", acc(0.7))
    make_run(tmp_path / "sweep" / "deep" / "two", acc(0.8))
    make_run(tmp_path / "rte-roberta", acc(0.99), dataset="rte")  # another dataset: ignored
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "best_accuracy: 0.8"
    assert [r["run"] for r in read_csv(tmp_path / "runs.csv")] == ["sweep/deep/two", "sweep/one"]


def test_command_line(tmp_path, search_dir):
    make_run(search_dir / "copa-20-5e-3-4", acc(0.75))
    ok = subprocess.run(
        [sys.executable, "search.py", "copa", "roberta", "accuracy", "--root", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[1] == "best_accuracy: 0.75"
    missing = subprocess.run(
        [sys.executable, "search.py", "wic", "bert", "accuracy", "--root", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "error: no run of wic-bert" in missing.stderr


def test_unknown_metric_lists_the_metrics_the_runs_have(tmp_path, search_dir, capsys):
    make_run(search_dir / "a", acc(0.7))
    make_run(search_dir / "b", {"best_epoch": 1, "best_eval_accuracy": 0.8, "best_eval_f1": 0.6, "note": "x"})
    assert search.main(["copa", "roberta", "acuracy", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert (
        f"error: no run of copa-roberta under {search_dir} has best_eval_acuracy; the runs have: accuracy, f1, loss"
        in err
    )
    assert "python search.py copa roberta accuracy" in err
    assert "expected" not in err and "warning" not in err  # one error, not a warning per run


def test_loss_is_minimised(tmp_path, search_dir, capsys):
    make_run(search_dir / "a", {"best_epoch": 1, "best_eval_loss": 0.70, "best_eval_accuracy": 0.5}, seed=1)
    make_run(search_dir / "b", {"best_epoch": 2, "best_eval_loss": 0.30, "best_eval_accuracy": 0.6}, seed=2)
    make_run(search_dir / "c", {"best_epoch": 3, "best_eval_loss": 0.50, "best_eval_accuracy": 0.7}, seed=3)
    assert search.main(["copa", "roberta", "loss", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    # 0.70, 0.30, 0.50: mean 0.5, sample std sqrt((0.2² + 0.2² + 0²) / 2) = 0.2; its best seed the lowest.
    assert out[0] == "best configuration, by mean loss over seeds: 0.5000 ± 0.2000 (n=3, seeds 1 2 3)"
    assert out[1] == "best_loss: 0.3"
    assert out[3] == str(search_dir / "b" / "best_results.json")
    assert "loss is lower-is-better" in captured.err
    assert "all 3 runs, by configuration (config: its # above), then by best_eval_loss (lowest first):" in out
    assert [r["run"] for r in read_csv(search_dir / "runs.csv")] == ["b", "c", "a"]
    assert search.lower_is_better("loss") and search.lower_is_better("test_loss")
    assert not search.lower_is_better("accuracy") and not search.lower_is_better("f1")


def test_a_run_without_args_json_is_listed_marked_and_never_silently_best(tmp_path, search_dir, capsys):
    make_run(search_dir / "b-good", acc(0.6))
    make_run(search_dir / "c-tie", acc(0.6), lr=7e-3)
    # The best score, and the first in path order: it used to be reported as best with every hyper-parameter '?'.
    (search_dir / "a-no-args").mkdir()
    (search_dir / "a-no-args" / "best_results.json").write_text(json.dumps(acc(0.9)))
    (search_dir / "a-broken-args").mkdir()
    (search_dir / "a-broken-args" / "best_results.json").write_text(json.dumps(acc(0.6)))
    (search_dir / "a-broken-args" / "args.json").write_text("{")
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[1] == "best_accuracy: 0.6" and out[3] == str(search_dir / "b-good" / "best_results.json")
    assert "(their best runs: b-good, c-tie)" in captured.out  # configurations: runs with args.json only
    assert (
        "not ranked first because they have no args.json (hyper-parameters unknown): a-no-args"
        in captured.err
    )
    title = "all 4 runs, by configuration (config: its # above), then by best_eval_accuracy (highest first):"
    table = out[out.index(title) + 2 :][:4]
    assert [line.split()[-1] for line in table] == ["b-good", "c-tie", "a-no-args*", "a-broken-args*"]
    assert "* no readable args.json: hyper-parameters unknown; ranked after every run with args.json" in out
    rows = read_csv(search_dir / "runs.csv")
    assert [(r["run"], r["args_json"]) for r in rows] == [
        ("b-good", "True"),
        ("c-tie", "True"),
        ("a-no-args", "False"),
        ("a-broken-args", "False"),
    ]


def test_only_runs_without_args_json_are_ranked_with_a_warning(tmp_path, search_dir, capsys):
    for name, value in (("x", 0.5), ("y", 0.7)):
        (search_dir / name).mkdir()
        (search_dir / name / "best_results.json").write_text(json.dumps(acc(value)))
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == "best configuration: unknown (no complete run has a readable args.json); the best run:"
    assert out[1] == "best_accuracy: 0.7"
    assert "no run has a readable args.json: the best run's hyper-parameters (y) are unknown" in captured.err
    assert "configurations (" not in captured.out  # unknown configurations are not grouped
    assert not (search_dir / "runs.svg").exists()


def test_same_args_compares_recorded_arguments(tmp_path, capsys):
    flags = [
        "--do_train",
        *("--model_name_or_path", "roberta-large", "--task_name", "superglue", "--dataset_name", "copa"),
        *("--learning_rate", "5e-3", "--pre_seq_len", "8", "--num_train_epochs", "20", "--seed", "11"),
        *("--prefix", "--hidden_dropout_prob", "0.1", "--eval_strategy", "epoch", "--report_to", "none"),
    ]
    run = tmp_path / "run"
    save_args(str(run), *get_args([*flags, "--output_dir", str(run)]))
    same = ["--same-args", str(run), "--", *flags, "--output_dir", "elsewhere", "--overwrite_output_dir"]
    assert search.main(same) == 0
    assert search.main(["--same-args", str(run), "--", *flags, "--evaluation_strategy=epoch"]) == 0
    other = [*flags[:-7], "--prompt", "--hidden_dropout_prob", "0.3"]
    assert search.main(["--same-args", str(run), "--", *other]) == 1
    out = capsys.readouterr().out
    assert "--prompt: recorded False, this sweep 'True'" in out
    assert "--hidden_dropout_prob: recorded 0.1, this sweep '0.3'" in out
    assert "--prefix: recorded True, this sweep leaves the default False" in out
    assert search.main(["--same-args", str(run), "--", *flags, "--max_train_samples", "16"]) == 1
    assert search.main(["--same-args", str(tmp_path / "nothing"), "--", *flags]) == 3
