"""search.py DATASET MODEL without <DATASET>-<MODEL>-search/: only MODEL's runs, by the backbone each run recorded
(new-user review, problem 2: `search.py rte bert` reported a MiniLM run in `rte-roberta` as best and exited 0)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_search import acc, make_run, read_csv

import search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINILM = "nreimers/MiniLM-L12-H384-uncased"


def set_model(run_dir, path):
    """Record another --model_name_or_path (a local folder that does not exist here, which get_args refuses)."""
    args = json.loads((run_dir / "args.json").read_text())
    args["model_args"]["model_name_or_path"] = path
    (run_dir / "args.json").write_text(json.dumps(args))


def other_models(root):
    make_run(
        root / "rte-roberta", acc(0.45), dataset="rte", model=MINILM
    )  # a MiniLM run in a roberta-named folder
    make_run(root / "sweep" / "rte-a", acc(0.99), dataset="rte", model=MINILM, seed=1)
    make_run(root / "sweep" / "rte-b", acc(0.30), dataset="rte", seed=2)
    set_model(root / "sweep" / "rte-b", "/models/roberta-large/")


def test_no_run_of_the_model_is_an_error_naming_the_models_found(tmp_path):
    other_models(tmp_path)
    make_run(tmp_path / "copa-bert", acc(0.9), model="bert-base-uncased")  # bert, but another dataset
    proc = subprocess.run(
        [sys.executable, "search.py", "rte", "bert", "--root", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[-1] == (
        f"error: no rte run of model 'bert' under {tmp_path} (and no {tmp_path / 'rte-bert-search'}); the rte runs "
        f"there used: MiniLM-L12-H384-uncased (2 runs), roberta-large (1 run); e.g. `python search.py rte "
        f"MiniLM-L12-H384-uncased --root {tmp_path}`"
    )
    assert not (tmp_path / "runs.csv").exists()


def test_only_the_runs_of_the_model_are_ranked_and_each_row_names_its_backbone(tmp_path, capsys):
    other_models(tmp_path)
    make_run(tmp_path / "mine" / "r1", acc(0.50), dataset="rte", seed=1)
    make_run(tmp_path / "mine" / "r2", acc(0.55), dataset="rte", model="FacebookAI/roberta-large", seed=2)
    make_run(tmp_path / "mine" / "r3", acc(0.60), dataset="rte", seed=3)
    set_model(tmp_path / "mine" / "r3", "/models/roberta-large")
    make_run(tmp_path / "mine" / "b", acc(0.95), dataset="rte", model="bert-base-uncased", seed=4)
    assert search.main(["rte", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[1] == "best_accuracy: 0.6" and out[3] == str(tmp_path / "mine" / "r3" / "best_results.json")
    assert out[4].endswith(" method=prefix backbone=roberta-large")
    # 0.50, 0.55, 0.60 and 0.30 (sweep/rte-b, same configuration, seed 2 again: the backbone counts, not the path
    # it was loaded from): mean 0.4875, sample std sqrt((0.0125² + 0.0625² + 0.1125² + 0.1875²) / 3) = 0.1315.
    assert out[0] == "best configuration, by mean accuracy over seeds: 0.4875 ± 0.1315 (n=4, seeds 1 2 3 2)"
    rows = read_csv(tmp_path / "runs.csv")
    assert [(r["run"], r["accuracy"], r["backbone"], r["config"]) for r in rows] == [
        ("mine/r3", "0.6", "roberta-large", "1"),
        ("mine/r2", "0.55", "roberta-large", "1"),
        ("mine/r1", "0.5", "roberta-large", "1"),
        ("sweep/rte-b", "0.3", "roberta-large", "1"),
        ("rte-roberta", "0.45", "MiniLM-L12-H384-uncased", "2"),  # by its folder name: warned about, named
    ]
    title = "all 5 runs, by configuration (config: its # above), then by best_eval_accuracy (highest first):"
    table = out[out.index(title) + 1 :][:6]
    assert table[0].split()[-3:] == ["backbone", "config", "run"]
    assert [line.split()[-3] for line in table[1:]] == ["roberta-large"] * 4 + ["MiniLM-L12-H384-uncased"]
    configs = out[
        out.index("configurations (2), by mean best_eval_accuracy over seeds (highest first):") + 2 :
    ][:2]
    assert configs[0].split()[:5] == "1 0.4875 ± 0.1315 4".split()
    assert configs[0].split()[-6:] == "prefix roberta-large 1 2 3 2".split()  # seeds in path order
    assert configs[1].split()[:5] == "2 0.4500 ± - 1".split()
    assert configs[1].split()[-3:] == "prefix MiniLM-L12-H384-uncased 11".split()
    err = captured.err
    assert (
        f"warning: {tmp_path / 'rte-roberta'}: counted as a roberta run by its folder name, but its args.json "
        "records MiniLM-L12-H384-uncased"
    ) in err
    assert (
        "note: left out the rte runs of other models: MiniLM-L12-H384-uncased (1 run), bert-base-uncased (1 run)"
        in err
    )
    # The tag is matched in any case, against the backbone's words.
    assert search.main(["rte", "minilm", "accuracy", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "best_accuracy: 0.99"
    assert [r["run"] for r in read_csv(tmp_path / "runs.csv")] == ["sweep/rte-a", "rte-roberta"]


def test_a_search_folder_keeps_backbones_apart_in_the_means_and_warns(tmp_path, capsys):
    d = tmp_path / "copa-roberta-search"
    make_run(d / "r1", acc(0.5), seed=1)
    make_run(d / "r2", acc(0.6), seed=2)
    make_run(d / "b1", acc(0.7), seed=1, model="bert-base-uncased")
    make_run(d / "b2", acc(0.9), seed=2, model="bert-base-uncased")
    assert search.main(["copa", "roberta", "accuracy", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    # bert: 0.7, 0.9 -> 0.8 ± 0.1414; roberta: 0.5, 0.6 -> 0.55 ± 0.0707 (one group of 4 was 0.675 ± 0.1708).
    out = captured.out.splitlines()
    configs = out[
        out.index("configurations (2), by mean best_eval_accuracy over seeds (highest first):") + 2 :
    ][:2]
    assert [line.split()[1:4] + line.split()[-3:] for line in configs] == [
        "0.8000 ± 0.1414 bert-base-uncased 1 2".split(),
        "0.5500 ± 0.0707 roberta-large 1 2".split(),
    ]
    assert (
        f"warning: runs in {d} used bert-base-uncased, which the model tag 'roberta' does not name; the backbone "
        "column says which run used which"
    ) in captured.err


def test_tag_matching_and_backbone_names():
    yes = [
        ("roberta", "roberta-large"),
        ("RoBERTa", "roberta-large"),
        ("bert", "bert-base-uncased"),
        ("minilm", "MiniLM-L12-H384-uncased"),
        ("deberta", "deberta-v2-xlarge"),
        ("roberta-large", "roberta-large"),
    ]
    no = [
        ("bert", "roberta-large"),
        ("bert", "distilbert-base-uncased"),
        ("roberta", "xlm-robertas"),
        ("", "x"),
    ]
    assert all(search.tag_matches(tag, name) for tag, name in yes)
    assert not any(search.tag_matches(tag, name) for tag, name in no)
    backbone = search.backbone
    assert backbone({"model_args": {"model_name_or_path": "/models/roberta-large/"}}) == "roberta-large"
    assert backbone({"model_args": {"model_name_or_path": "FacebookAI/roberta-large"}}) == "roberta-large"
    assert backbone({"model_args": {"model_name_or_path": 5}}) is None and backbone(None) is None
