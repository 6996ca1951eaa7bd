"""benchmarks/reproduce.py's report: mean ± std over seeds, the required JSON shape and the "why" table, from run
folders written by hand (no training)."""

import json
import os

import pytest

from benchmarks import reproduce


def write_run(folder, best, all_results=None, args=None):
    os.makedirs(folder)
    files = {"best_results.json": best, "all_results.json": all_results, "args.json": args}
    for name, content in files.items():
        if content is not None:
            with open(os.path.join(folder, name), "w") as f:
                json.dump(content, f)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(reproduce, "WHY_RUNS", str(tmp_path / "runs" / "why"))
    monkeypatch.setattr(reproduce, "RESULTS", str(tmp_path / "results"))
    return tmp_path


def test_mean_std_over_seeds_and_the_json_shape(runs):
    for seed, (dev, test, seconds) in {1: (0.80, 0.70, 100.0), 2: (0.84, 0.76, 120.0)}.items():
        write_run(
            runs / "runs" / "conll2003" / f"prefix-seed{seed}",
            {"best_eval_f1": dev, "best_test_f1": test},
            {"train_runtime": seconds, "trainable_params": 77193, "total_params": 22643385},
        )
    write_run(runs / "runs" / "conll2003" / "prompt-seed1", {"best_eval_f1": 0.5})  # no all_results: skipped
    table = reproduce.collect(["conll2003"], ["prefix", "prompt"], [1, 2, 3])
    assert list(table["conll2003"]) == ["prefix"]
    row = table["conll2003"]["prefix"]
    assert row["metric"] == "eval_f1" and row["seeds"] == [1, 2]
    assert row["mean"] == pytest.approx(82.0)
    assert row["std"] == pytest.approx(2**0.5 * 2.0)  # sample std of 80 and 84
    assert row["all_metrics"]["test entity F1"]["mean"] == pytest.approx(73.0)
    assert row["trainable_params"] == 77193 and row["train_seconds_mean"] == 110.0

    reproduce.write_report(table)
    with open(runs / "results" / "reproduction.json") as f:
        saved = json.load(f)
    assert set(saved["conll2003"]["prefix"]) >= {"metric", "mean", "std", "seeds", "trainable_params"}
    md = (runs / "results" / "reproduction.md").read_text()
    assert "| prefix (seeds 1,2) | 82.0 ± 2.8 | 73.0 ± 4.2 | 77,193 (0.34%) | 110 s |" in md
    assert "Why P-tuning v2" not in md  # no sweep runs, no section
    assert (runs / "results" / "reproduction.svg").read_text().startswith("<svg")


def test_why_table_lists_each_sweep_run_with_its_factors(runs):
    def args(lr, psl, epochs, shift, dropout):
        return {
            "model_args": {"pre_seq_len": psl, "shift_positions": shift, "hidden_dropout_prob": dropout},
            "training_args": {"learning_rate": lr, "num_train_epochs": epochs, "seed": 1},
        }

    why = runs / "runs" / "why"
    write_run(
        why / "conll2003-minilm-noshift-search" / "conll2003-3-2e-2-16",
        {"best_epoch": 2, "best_eval_f1": 0.7512, "best_test_f1": 0.6849},
        {"train_runtime": 181.4},
        args(0.02, 16, 3.0, False, 0.1),
    )
    write_run(why / "conll2003-minilm-search" / "conll2003-9-2e-2-16", {"best_eval_f1": 0.9})  # unfinished
    write_run(
        why / "conll2003-minilm-search" / "conll2003-3-2e-2-16",
        {"best_epoch": 2, "best_eval_f1": 0.7476, "best_test_f1": 0.6839},
        {"train_runtime": 167.0},
        args(0.02, 16, 3.0, True, 0.1),
    )
    cell, *rows = (
        reproduce.collect_why()
    )  # the reproduction's cell first, though its folder sorts after noshift
    assert (cell["sweep"], cell["dev_f1"]) == ("minilm", pytest.approx(74.76))
    assert rows == [
        {
            "sweep": "minilm-noshift",
            "learning_rate": 0.02,
            "pre_seq_len": 16,
            "epochs": 3.0,
            "shift_positions": False,
            "dropout": 0.1,
            "seed": 1,
            "best_epoch": 2,
            "dev_f1": pytest.approx(75.12),
            "test_f1": pytest.approx(68.49),
            "train_seconds": 181.4,
        }
    ]
    finetune = {
        "seeds": [1, 2],
        "train_seconds_mean": 226.0,
        "all_metrics": {"dev entity F1": {"mean": 83.1}, "test entity F1": {"mean": 77.5}},
    }
    lines = reproduce.why_table(rows, finetune)
    assert "| minilm-noshift | 0.02 | 16 | 3 | no | 0.1 | 3/3 | 75.1 | 68.5 | 181 s |" in lines
    assert (
        lines[-1]
        == "| fine-tuning (table above, mean of seeds 1,2) | 5e-5 | | 3 | | 0.1 | | 83.1 | 77.5 | 226 s |"
    )


def test_report_only_without_run_folders_rerenders_the_saved_results(runs):
    write_run(
        runs / "runs" / "conll2003" / "prefix-seed1",
        {"best_eval_f1": 0.80, "best_test_f1": 0.70},
        {"train_runtime": 100.0, "trainable_params": 77193, "total_params": 22643385},
    )
    reproduce.main(["--report-only"])
    saved = {name: (runs / "results" / name).read_text() for name in ("reproduction.json", "reproduction.md")}
    os.remove(runs / "runs" / "conll2003" / "prefix-seed1" / "best_results.json")  # a fresh clone has no runs
    table = reproduce.main(["--report-only"])
    assert table["conll2003"]["prefix"]["mean"] == pytest.approx(80.0)
    for name, text in saved.items():
        assert (runs / "results" / name).read_text() == text


def test_report_only_with_nothing_to_report_stops_and_writes_nothing(runs):
    with pytest.raises(SystemExit, match="no finished runs under .* run `python -m benchmarks.reproduce`"):
        reproduce.main(["--report-only"])
    assert not (runs / "results").exists()


def test_the_why_section_falls_back_to_the_saved_sweep_results(runs):
    row = {
        "sweep": "minilm-nodropout",
        "learning_rate": 0.02,
        "pre_seq_len": 16,
        "epochs": 3.0,
        "shift_positions": True,
        "dropout": 0.0,
        "seed": 1,
        "best_epoch": 1,
        "dev_f1": 76.04,
        "test_f1": 70.06,
        "train_seconds": 150.2,
    }
    os.makedirs(runs / "results")
    with open(runs / "results" / "why_conll2003.json", "w") as f:
        json.dump([row], f)
    reproduce.write_report({})
    md = (runs / "results" / "reproduction.md").read_text()
    assert "| minilm-nodropout | 0.02 | 16 | 3 | yes | 0 | 2/3 | 76.0 | 70.1 | 150 s |" in md
