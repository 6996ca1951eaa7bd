"""search.py and a run stopped by a non-finite loss: best_results.json then holds the best of the epochs before it
and a "stopped" entry (training/trainer.py save_stopped_results). Such a run is marked, ranked after every complete
run, never the headline and never in a mean (reliability review 2, S10)."""

from __future__ import annotations

from test_search import acc, make_run, read_csv

import search

STOPPED = "the training loss became nan at step 33 (epoch 2); these are the best of the epochs before it"


def stopped(value, epoch=1):
    return {**acc(value, epoch), "stopped": STOPPED}


def test_a_stopped_run_is_marked_never_best_and_left_out_of_the_mean(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    for name, value, seed in (("s1", 0.50, 1), ("s2", 0.55, 2), ("s3", 0.60, 3)):
        make_run(d / name, acc(value), seed=seed)
    make_run(d / "s4", stopped(0.90), seed=4)  # the highest accuracy, of a run that diverged
    (d / "no-args").mkdir()
    (d / "no-args" / "best_results.json").write_text('{"best_epoch": 1, "best_eval_accuracy": 0.3}')
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == "best configuration, by mean accuracy over seeds: 0.5500 ± 0.0500 (n=3, seeds 1 2 3)"
    assert out[1] == "best_accuracy: 0.6" and out[3] == str(d / "s3" / "best_results.json")
    assert (
        "warning: not ranked first because training stopped on a non-finite loss (the best of the epochs before "
        "it): s4"
    ) in captured.err
    title = "all 5 runs, by configuration (config: its # above), then by best_eval_accuracy (highest first):"
    table = out[out.index(title) + 2 :][:5]
    assert [line.split()[0] for line in table] == ["0.6", "0.55", "0.5", "0.3", "0.9"]
    assert [line.split()[-1] for line in table] == ["s3", "s2", "s1", "no-args*", "s4!"]
    assert any(
        line.startswith('! stopped by a non-finite loss (best_results.json "stopped")') for line in out
    )
    # 0.50, 0.55, 0.60 -> 0.55 ± 0.05 (sample std); with s4 it was 0.6375 ± 0.1797 (n=4).
    [config] = out[
        out.index(
            "configurations (1), by mean best_eval_accuracy over seeds (highest first; seed! stopped: left out):"
        )
        + 2 :
    ][:1]
    assert config.split()[:5] == ["1", "0.5500", "±", "0.0500", "3"] and config.endswith("  1 2 3 4!")
    assert [line.split()[-2] for line in table] == ["1", "1", "1", "-", "1"]  # s4 is of configuration 1
    rows = read_csv(d / "runs.csv")
    assert [(r["run"], r["stopped"]) for r in rows] == [
        ("s3", ""),
        ("s2", ""),
        ("s1", ""),
        ("no-args", ""),
        ("s4", STOPPED),
    ]


def test_when_every_run_stopped_there_is_no_best_and_the_exit_code_says_so(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    make_run(d / "a", stopped(0.7), seed=1)
    make_run(d / "b", stopped(0.8), seed=2)
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "best_accuracy" not in captured.out
    assert (
        "error: every run of copa-roberta with best_eval_accuracy stopped on a non-finite loss: no complete run "
        "to report; rerun them with a lower --learning_rate (search.sh reruns stopped runs)"
    ) in captured.err
    assert [line.split()[-1] for line in captured.out.splitlines() if line.startswith("0.")] == ["b!", "a!"]
    assert "configurations (" not in captured.out  # no complete run to average
    assert not (d / "runs.svg").exists()
    assert [(r["run"], r["stopped"]) for r in read_csv(d / "runs.csv")] == [("b", STOPPED), ("a", STOPPED)]


def test_finished_tells_search_sh_which_folders_are_done(tmp_path, capsys):
    make_run(tmp_path / "done", acc(0.7))
    make_run(tmp_path / "stopped", stopped(0.7))
    make_run(tmp_path / "corrupt", '{"best_epoch": 1, "best_eval_acc')
    make_run(tmp_path / "unfinished", None)
    assert search.main(["--finished", str(tmp_path / "done")]) == 0
    assert capsys.readouterr().out == ""
    assert search.main(["--finished", str(tmp_path / "stopped")]) == 1
    assert capsys.readouterr().out == (
        f"training stopped early ({STOPPED}); if it stops again, lower the learning rate\n"
    )
    assert search.main(["--finished", str(tmp_path / "corrupt")]) == 1
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'corrupt' / 'best_results.json'} unreadable (")
    assert search.main(["--finished", str(tmp_path / "unfinished")]) == 1
    assert search.main(["--finished"]) == 2
