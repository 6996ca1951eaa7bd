"""The same run.py under `torchrun --nproc_per_node 2` (DDP on CPU through gloo) trains on both ranks and writes
its results once."""

import json
import os
import subprocess
import sys

import fixtures
from tiny import save_tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_torchrun_two_processes_trains_and_writes_results_once(tmp_path):
    model = save_tiny_model(str(tmp_path / "model"), "bert")
    data = fixtures.superglue_rte(str(tmp_path / "data"), n_train=16, n_val=8, n_test=5)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        os.path.join(ROOT, "run.py"),
        "--model_name_or_path",
        model,
        "--task_name",
        "superglue",
        "--dataset_name",
        "rte",
        "--data_dir",
        data,
        "--output_dir",
        str(out),
        "--do_train",
        "--do_eval",
        "--do_predict",
        "--prefix",
        "--pre_seq_len",
        "4",
        "--per_device_train_batch_size",
        "4",
        "--num_train_epochs",
        "2",
        "--eval_strategy",
        "epoch",
        "--save_strategy",
        "epoch",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--max_seq_length",
        "32",
        "--ddp_backend",
        "gloo",
    ]
    result = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4  # 16 examples / (4 per device x 2 ranks) = 2 steps per epoch
    assert result.stdout.count("***** best metrics *****") == 1  # logged and written by rank 0 only
    best = json.loads((out / "best_results.json").read_text())
    assert set(best) >= {"best_epoch", "best_eval_accuracy"}
    rows = (out / "predict_results_test.jsonl").read_text().splitlines()
    assert [json.loads(r)["idx"] for r in rows] == [0, 1, 2, 3, 4]  # every test example once, in order
