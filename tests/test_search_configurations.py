"""search.py ranks configurations (every recorded result-changing argument but the seed) by their mean over seeds
(issue 34 item 2): the headline, the tables' test and varying-flag columns, the SVG plot, ranking by a test metric.
Every expected mean ± std is computed by hand in the comments (sample std, n - 1)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from test_search import make_run, read_csv

import search

SVG = "{http://www.w3.org/2000/svg}"


def scores(dev, test):
    return {"best_epoch": 1, "best_eval_accuracy": dev, "best_eval_loss": 0.5, "best_test_accuracy": test}


def two_configurations(d):
    """Configuration A (weight decay 0) and B (weight decay 0.1), seeds 1 2 3 each; B has the best single seed.
    A dev: 0.70 0.72 0.74 -> mean 0.72, std sqrt((0.02² + 0² + 0.02²) / 2) = 0.02
      test: 0.60 0.61 0.63 -> mean 0.61333, std sqrt((0.01333² + 0.00333² + 0.01667²) / 2) = 0.01528
    B dev: 0.60 0.62 0.90 -> mean 0.70667, std sqrt((0.10667² + 0.08667² + 0.19333²) / 2) = 0.16773
      test: 0.50 0.52 0.70 -> mean 0.57333, std sqrt((0.07333² + 0.05333² + 0.12667²) / 2) = 0.11015"""
    for seed, dev, test in ((1, 0.70, 0.60), (2, 0.72, 0.61), (3, 0.74, 0.63)):
        make_run(d / f"a{seed}", scores(dev, test), seed=seed)
    for seed, dev, test in ((1, 0.60, 0.50), (2, 0.62, 0.52), (3, 0.90, 0.70)):
        make_run(d / f"b{seed}", scores(dev, test), seed=seed, extra=("--weight_decay", "0.1"))


def section(out, title, n):
    """The n lines after a table's title line and its header."""
    return out[out.index(title) + 2 :][:n]


def test_the_better_mean_is_the_headline_not_the_single_best_seed(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    two_configurations(d)
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "best configuration, by mean accuracy over seeds: 0.7200 ± 0.0200 (n=3, seeds 1 2 3); test 0.6133 ± 0.0153"
    )
    assert out[1] == "best_accuracy: 0.74"  # its best seed
    assert json.loads(out[2]) == scores(0.74, 0.63)
    assert out[3] == str(d / "a3" / "best_results.json")
    assert out[4].endswith("prefix_projection=False weight_decay=0 method=prefix backbone=roberta-large")
    assert out[5] == (
        "a single run scored better: b3 (0.9), one seed of configuration #2; configurations are ranked by their "
        "mean over seeds"
    )
    # The configurations: a test column and the flag that varies (weight_decay, not a fixed search column).
    title = "configurations (2), by mean best_eval_accuracy over seeds (highest first):"
    assert out[out.index(title) + 1].split() == (
        "# mean ± std n test lr psl epochs bs dropout proj weight_decay method backbone seeds".split()
    )
    assert [line.split() for line in section(out, title, 2)] == [
        "1 0.7200 ± 0.0200 3 0.6133 ± 0.0153 0.005 8 20 16 0.1 False 0 prefix roberta-large 1 2 3".split(),
        "2 0.7067 ± 0.1677 3 0.5733 ± 0.1102 0.005 8 20 16 0.1 False 0.1 prefix roberta-large 1 2 3".split(),
    ]
    # The runs: best configuration first, its best seed first.
    title = "all 6 runs, by configuration (config: its # above), then by best_eval_accuracy (highest first):"
    assert out[out.index(title) + 1].split() == (
        "accuracy test best_epoch lr psl epochs seed bs dropout proj weight_decay method backbone config run".split()
    )
    assert [(line.split()[:2], line.split()[10], line.split()[-2:]) for line in section(out, title, 6)] == [
        (["0.74", "0.63"], "0", ["1", "a3"]),
        (["0.72", "0.61"], "0", ["1", "a2"]),
        (["0.7", "0.6"], "0", ["1", "a1"]),
        (["0.9", "0.7"], "0.1", ["2", "b3"]),
        (["0.62", "0.52"], "0.1", ["2", "b2"]),
        (["0.6", "0.5"], "0.1", ["2", "b1"]),
    ]
    rows = read_csv(d / "runs.csv")
    assert [(r["run"], r["best_test_accuracy"], r["weight_decay"], r["config"]) for r in rows] == [
        ("a3", "0.63", "0.0", "1"),
        ("a2", "0.61", "0.0", "1"),
        ("a1", "0.6", "0.0", "1"),
        ("b3", "0.7", "0.1", "2"),
        ("b2", "0.52", "0.1", "2"),
        ("b1", "0.5", "0.1", "2"),
    ]
    # The plot: one panel (weight_decay varies, the seeds are not a hyper-parameter), a point per seed run, a mark
    # per configuration mean, a title and axis labels.
    assert out[-1] == f"wrote {d / 'runs.svg'}"
    svg = ET.parse(d / "runs.svg").getroot()
    panels = svg.findall(f".//{SVG}g[@class='panel']")
    assert [p.get("data-flag") for p in panels] == ["weight_decay"]
    assert len(panels[0].findall(f"{SVG}circle[@class='run']")) == 6
    assert len(panels[0].findall(f"{SVG}path[@class='mean']")) == 2
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "copa-roberta: best_eval_accuracy per swept flag (6 runs)" in texts
    assert texts.count("weight_decay") == 2 and "best_eval_accuracy" in texts  # panel title, x and y labels


def test_the_plot_has_a_panel_per_swept_flag_and_leaves_out_unranked_runs(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    for lr, psl in ((1e-3, 4), (1e-3, 16), (3e-2, 4)):
        for seed in (1, 2):
            make_run(
                d / f"{lr}-{psl}-{seed}",
                scores(0.5 + lr + psl / 100 + seed / 1000, 0.5),
                lr=lr,
                psl=psl,
                seed=seed,
            )
    make_run(d / "stopped", {**scores(0.99, 0.5), "stopped": "nan loss"}, lr=0.5, seed=3)  # never plotted
    (d / "no-args").mkdir()
    (d / "no-args" / "best_results.json").write_text(json.dumps(scores(0.98, 0.5)))  # configuration unknown
    assert (
        search.main(
            ["copa", "roberta", "accuracy", "--root", str(tmp_path), "--csv", str(tmp_path / "t.csv")]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {tmp_path / 't.svg'}"  # beside --csv
    svg = ET.parse(tmp_path / "t.svg").getroot()
    panels = svg.findall(f".//{SVG}g[@class='panel']")
    # learning_rate and pre_seq_len vary (the seeds are averaged over, not plotted against).
    assert [p.get("data-flag") for p in panels] == ["learning_rate", "pre_seq_len"]
    for p in panels:
        assert len(p.findall(f"{SVG}circle[@class='run']")) == 6  # the ranked seed runs
        assert len(p.findall(f"{SVG}path[@class='mean']")) == 3
    titles = [t.text for t in svg.iter(f"{SVG}text") if t.get("font-weight") == "bold"]
    assert "learning_rate (log scale)" in titles  # 0.001 to 0.03: 30x
    assert "pre_seq_len" in titles  # 4 to 16: 4x, linear
    # Only seeds vary: nothing to plot.
    one = tmp_path / "one" / "rte-roberta-search"
    for seed in (1, 2):
        make_run(one / f"s{seed}", scores(0.5, 0.5), dataset="rte", seed=seed)
    assert search.main(["rte", "roberta", "--root", str(tmp_path / "one")]) == 0
    assert not (one / "runs.svg").exists() and "runs.svg" not in capsys.readouterr().out


def test_a_configuration_is_every_recorded_result_changing_flag_but_the_seed(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    make_run(d / "all", scores(0.8, 0.7), seed=1)  # --max_train_samples None: no limit
    make_run(d / "all-2", scores(0.6, 0.7), seed=2)
    make_run(d / "few", scores(0.75, 0.7), seed=1, extra=("--max_train_samples", "16"))
    make_run(d / "old", scores(0.9, 0.7), seed=2)  # as if written before --lr_decay existed
    old = json.loads((d / "old" / "args.json").read_text())
    del old["training_args"]["lr_decay"]
    (d / "old" / "args.json").write_text(json.dumps(old))
    make_run(d / "logs", scores(0.4, 0.7), seed=3, extra=("--logging_steps", "7"))  # not result-changing
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    # "all", "all-2" and "logs": 0.8, 0.6, 0.4 -> mean 0.6, std 0.2; "few" 0.75 and "old" 0.9 stand alone.
    title = "configurations (3), by mean best_eval_accuracy over seeds (highest first):"
    header = out[out.index(title) + 1].split()
    assert header[-5:] == ["lr_decay", "max_train_samples", "method", "backbone", "seeds"]
    configs = [line.split() for line in section(out, title, 3)]
    assert [c[:5] + c[14:] for c in configs] == [  # c[5:14]: test mean ± std and the fixed search columns
        "1 0.9000 ± - 1 ? None prefix roberta-large 2".split(),
        "2 0.7500 ± - 1 0.95 16 prefix roberta-large 1".split(),
        "3 0.6000 ± 0.2000 3 0.95 None prefix roberta-large 1 2 3".split(),
    ]


def test_ranking_by_a_test_metric_shows_the_dev_score_beside_it(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    two_configurations(d)
    assert search.main(["copa", "roberta", "test_accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == (
        "best configuration, by mean test_accuracy over seeds: 0.6133 ± 0.0153 (n=3, seeds 1 2 3); dev 0.7200 ± "
        "0.0200"
    )
    assert out[1] == "best_test_accuracy: 0.63"
    assert (
        "warning: ranking by best_test_accuracy, a test score: report it, but choose hyper-parameters by a dev "
        in (captured.err)
    )
    title = "all 6 runs, by configuration (config: its # above), then by best_test_accuracy (highest first):"
    assert out[out.index(title) + 1].split()[:2] == ["test_accuracy", "dev"]
    assert [r["best_eval_accuracy"] for r in read_csv(d / "runs.csv")] == [
        "0.74",
        "0.72",
        "0.7",
        "0.9",
        "0.62",
        "0.6",
    ]
    # A metric no run has lists the test ones too, after the dev ones.
    assert search.main(["copa", "roberta", "test_f1", "--root", str(tmp_path)]) == 1
    assert "has best_test_f1; the runs have: accuracy, loss, test_accuracy" in capsys.readouterr().err
