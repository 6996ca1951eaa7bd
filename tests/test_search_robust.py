"""search.py on run folders that are damaged, linked or strange (reliability review 2, part D: S1-S3, S5-S8).

Each expected mean ± std is computed by hand in the test: 0.50, 0.55, 0.60 -> mean 0.55, sample std
sqrt((0.05² + 0² + 0.05²) / 2) = 0.05."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from test_search import acc, make_run, read_csv

import search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREE_SEEDS = "best configuration, by mean accuracy over seeds: 0.5500 ± 0.0500 (n=3, seeds 1 2 3)"


def three_runs(parent):
    """Three seeds of one configuration: accuracy 0.50, 0.55, 0.60 (mean 0.55 ± 0.05)."""
    for name, value, seed in (("s1/r1", 0.50, 1), ("s1/r2", 0.55, 2), ("s2/r3", 0.60, 3)):
        make_run(parent / name, acc(value), seed=seed)


def headline(out):
    """The best configuration's line (the first), then its best seed's value."""
    return out.splitlines()[:2]


def search_cli(*args, timeout=60):
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "search.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    return proc, time.monotonic() - start


def test_s1_a_loop_link_in_a_recursive_root_counts_each_run_once(tmp_path, capsys):
    three_runs(tmp_path / "runs")
    os.symlink("..", tmp_path / "runs" / "s1" / "loop")  # runs/s1/loop -> runs: glob made 3 runs 123
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert headline(captured.out) == [THREE_SEEDS, "best_accuracy: 0.6"]
    assert "all 3 runs, by configuration" in captured.out
    assert [r["run"] for r in read_csv(tmp_path / "runs.csv")] == ["runs/s2/r3", "runs/s1/r2", "runs/s1/r1"]
    assert "warning" not in captured.err  # a link inside --root: its runs are reached by their real path


def test_s2_two_loop_links_terminate_quickly_and_an_outside_link_is_named(tmp_path):
    three_runs(tmp_path / "runs")
    os.symlink("..", tmp_path / "runs" / "s1" / "loop")
    os.symlink(tmp_path, tmp_path / "runs" / "s2" / "up")  # with the loop above, glob never finished (120 s)
    make_run(tmp_path / "elsewhere" / "r9", acc(0.99), seed=9)
    os.symlink(tmp_path / "elsewhere", tmp_path / "runs" / "ext")
    proc, seconds = search_cli("copa", "roberta", "accuracy", "--root", str(tmp_path / "runs"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert seconds < 30
    assert headline(proc.stdout) == [THREE_SEEDS, "best_accuracy: 0.6"]
    assert "all 3 runs, by configuration" in proc.stdout
    assert (
        f"warning: not following the folder link {tmp_path / 'runs' / 'ext'} -> {tmp_path / 'elsewhere'}; "
        f"to rank the runs there, pass --root {tmp_path / 'elsewhere'}"
    ) in proc.stderr


def test_s3_a_latest_link_in_a_search_folder_is_the_same_run(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    for name, value, seed in (("s1", 0.50, 1), ("s2", 0.55, 2), ("s3", 0.60, 3)):
        make_run(d / name, acc(value), seed=seed)
    os.symlink(
        "s2", d / "latest"
    )  # sorts before s2: it used to be counted as a fourth run (n=4, seeds 2 1 2 3)
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert headline(captured.out)[0] == THREE_SEEDS
    assert [r["run"] for r in read_csv(d / "runs.csv")] == ["s3", "s2", "s1"]
    assert f"warning: {d / 'latest'} is the same folder as {d / 's2'} (a link): its run is counted once" in (
        captured.err
    )


def test_s5_s6_infinite_and_overflowing_metrics_count_as_missing(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    for name, value, seed in (("s1", 0.50, 1), ("s2", 0.55, 2), ("s3", 0.60, 3)):
        make_run(d / name, {**acc(value), "best_eval_loss": 0.5 + seed / 10}, seed=seed)
    # json.dump writes float("inf") as Infinity: it used to be reported as best, then statistics.stdev crashed.
    make_run(
        d / "inf", '{"best_epoch": 1, "best_eval_accuracy": Infinity, "best_eval_loss": -Infinity}', seed=4
    )
    make_run(
        d / "huge", '{"best_epoch": 1, "best_eval_accuracy": 1' + "0" * 400 + "}", seed=5
    )  # OverflowError
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert headline(captured.out) == [THREE_SEEDS, "best_accuracy: 0.6"]
    assert [r["run"] for r in read_csv(d / "runs.csv")] == ["s3", "s2", "s1"]
    err = captured.err
    assert (
        f"skipping {d / 'inf' / 'best_results.json'}: no numeric 'best_eval_accuracy' (inf, not a finite number: "
        "counts as missing)"
    ) in err
    assert (
        f"skipping {d / 'huge' / 'best_results.json'}: no numeric 'best_eval_accuracy' (an integer of 1329 bits, "
        "too large for a float: counts as missing)"
    ) in err
    # A loss of -Infinity is not the smallest loss either: 0.6, 0.7, 0.8 -> 0.7 ± 0.1.
    assert search.main(["copa", "roberta", "loss", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert headline(captured.out) == [
        "best configuration, by mean loss over seeds: 0.7000 ± 0.1000 (n=3, seeds 1 2 3)",
        "best_loss: 0.6",
    ]
    assert "no numeric 'best_eval_loss' (-inf, not a finite number: counts as missing)" in captured.err


def test_s7_args_json_with_wrong_typed_sections_means_hyperparameters_unknown(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    make_run(d / "good", acc(0.6))
    make_run(d / "bad", acc(0.9))
    (d / "bad" / "args.json").write_text(json.dumps({"training_args": 5, "model_args": []}))
    # A list where a number belongs: listed as recorded, and the seed grouping does not crash on it.
    make_run(d / "odd", acc(0.7))
    odd = json.loads((d / "odd" / "args.json").read_text())
    odd["training_args"]["learning_rate"] = [0.005]
    (d / "odd" / "args.json").write_text(json.dumps(odd))
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1] == "best_accuracy: 0.7"
    assert (
        f"warning: {d / 'bad'}: hyper-parameters unknown, args.json unreadable (model_args is list, training_args "
        "is int, not a JSON object as run.py writes; restore the file or rerun the run)"
    ) in captured.err
    rows = read_csv(d / "runs.csv")
    assert [(r["run"], r["learning_rate"], r["args_json"]) for r in rows] == [
        ("odd", "[0.005]", "True"),
        ("good", "0.005", "True"),
        ("bad", "", "False"),
    ]
    # Without a search folder, the same args.json (its data_args intact) is ranked the same way.
    other = tmp_path / "loose"
    make_run(other / "good", acc(0.6))
    make_run(other / "bad", acc(0.9))
    (other / "bad" / "args.json").write_text(
        json.dumps(
            {
                "data_args": {"dataset_name": "copa"},
                "model_args": {"model_name_or_path": "roberta-large"},
                "training_args": 5,
            }
        )
    )
    assert search.main(["copa", "roberta", "accuracy", "--root", str(other)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1] == "best_accuracy: 0.6"
    assert (
        f"{other / 'bad'}: hyper-parameters unknown, args.json unreadable (training_args is int"
        in captured.err
    )


def test_s8_fifos_are_skipped_never_opened(tmp_path):
    d = tmp_path / "copa-roberta-search"
    for name, value, seed in (("s1", 0.50, 1), ("s2", 0.55, 2), ("s3", 0.60, 3)):
        make_run(d / name, acc(value), seed=seed)
    make_run(d / "fifo-results", None)
    os.mkfifo(d / "fifo-results" / "best_results.json")  # opening it would block until a writer comes
    make_run(d / "fifo-args", acc(0.4))
    (d / "fifo-args" / "args.json").unlink()
    os.mkfifo(d / "fifo-args" / "args.json")
    proc, _ = search_cli("copa", "roberta", "accuracy", "--root", str(tmp_path), timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert headline(proc.stdout)[0] == THREE_SEEDS
    fifo = "a FIFO, not a regular file: not opened; replace it with the file run.py wrote"
    assert f"warning: skipping {d / 'fifo-results' / 'best_results.json'}: unreadable ({fifo})" in proc.stderr
    assert (
        f"warning: {d / 'fifo-args'}: hyper-parameters unknown, args.json unreadable ({fifo})" in proc.stderr
    )
    assert [r["run"] for r in read_csv(d / "runs.csv")] == ["s3", "s2", "s1", "fifo-args"]
    # Without a search folder, args.json is read to tell the dataset: a FIFO there is skipped too.
    os.rename(d, tmp_path / "loose")
    proc, _ = search_cli("copa", "roberta", "accuracy", "--root", str(tmp_path), timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert headline(proc.stdout)[0] == THREE_SEEDS
    assert f"warning: skipping {tmp_path / 'loose' / 'fifo-args'}: no readable args.json" in proc.stderr
    assert fifo in proc.stderr


def test_unreadable_files_and_folders_are_skipped_with_a_warning(tmp_path, monkeypatch, capsys):
    """Permissions cannot be taken away from root (the tests may run as root): open and scandir are made to fail."""
    three_runs(tmp_path / "runs")
    make_run(tmp_path / "runs" / "locked" / "r4", acc(0.99), seed=4)  # in a folder that cannot be listed
    make_run(tmp_path / "runs" / "s3" / "r5", acc(0.98), seed=5)  # best_results.json cannot be read
    make_run(tmp_path / "runs" / "s3" / "r6", acc(0.97), seed=6)  # args.json cannot be read
    denied = {
        str(tmp_path / "runs" / "s3" / "r5" / "best_results.json"),
        str(tmp_path / "runs" / "s3" / "r6" / "args.json"),
    }
    real_open, real_scandir = open, os.scandir

    def fake_open(path, *args, **kwargs):
        if str(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    def fake_scandir(path="."):
        if str(path) == str(tmp_path / "runs" / "locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(os, "scandir", fake_scandir)
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert headline(captured.out) == [THREE_SEEDS, "best_accuracy: 0.6"]
    err = captured.err
    assert (
        f"warning: skipping {tmp_path / 'runs' / 'locked'}: unreadable folder (Permission denied); make it "
        "readable to rank the runs in it"
    ) in err
    assert f"warning: skipping {tmp_path / 'runs' / 's3' / 'r6'}: no readable args.json" in err
    assert f"warning: skipping {tmp_path / 'runs' / 's3' / 'r5' / 'best_results.json'}: unreadable" in err
