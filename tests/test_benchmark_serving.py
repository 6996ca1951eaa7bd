"""benchmarks/serving.py --smoke: the serving benchmark's whole code path on a tiny random BERT (K = 1, 2), two
peak-memory child processes included; the JSON's shape, and every check recomputed from its rows.

Timings are not asserted (noise at this size); byte counts are."""

import json
import os

import pytest
import torch

from benchmarks.serving import CONFIGS, DEFAULT_OUT, main


def _stamp(path):
    return os.stat(path).st_mtime_ns if os.path.exists(path) else None


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("serving")
    before, threads = _stamp(DEFAULT_OUT), torch.get_num_threads()
    returned = main(["--smoke", "--out", str(out)])
    assert _stamp(DEFAULT_OUT) == before  # a smoke run never overwrites the committed results
    assert torch.get_num_threads() == threads
    saved = json.loads((out / "serving.json").read_text())
    assert json.loads(json.dumps(returned)) == saved
    return saved


def rows_by(result):
    return {(r["K"], r["prefix_lengths"], r["config"]): r for r in result["rows"]}


def test_json_holds_every_group_and_configuration(smoke):
    for key in ("device", "torch", "transformers", "threads", "backbone", "data", "batch_size", "examples"):
        assert key in smoke, key
    assert smoke["device"] == "cpu" and smoke["batch_size"] == 4 and smoke["examples"] == 8
    rows = rows_by(smoke)
    expected = {(K, "16", c) for K in (1, 2) for c in CONFIGS} | {(2, "8/16", c) for c in CONFIGS[:4]}
    assert set(rows) == expected
    for r in smoke["rows"]:
        assert r["examples_per_s"] > 0 and len(r["seconds"]) == 1 and all(s > 0 for s in r["seconds"])
        assert r["batches"] == 2 and r["padded_tokens"] >= r["examples"]
        assert r["static_bytes"] >= r["backbone_bytes"] > r["adapter_bytes"] > 0


def test_the_configurations_hold_what_they_say(smoke):
    rows = rows_by(smoke)
    for K in (1, 2):
        mixed, own, separate = (rows[(K, "16", c)] for c in ("mixed", "own_model", "separate_models"))
        shared = mixed["backbone_bytes"] + mixed["adapter_bytes"]
        assert own["static_bytes"] == shared  # one backbone + the adapters' own tensors
        assert mixed["static_bytes"] > shared  # + the prefix bank
        assert separate["static_bytes"] == K * mixed["backbone_bytes"] + mixed["adapter_bytes"]
        assert rows[(K, "16", "per_adapter")]["padded_tokens"] == own["padded_tokens"]
        assert rows[(K, "16", "mixed_same_rows")]["padded_tokens"] == own["padded_tokens"]
        assert own["vs_own_model"] == 1.0


def test_checks_recompute_from_the_rows(smoke):
    checks, rows = smoke["checks"], rows_by(smoke)
    assert checks["K"] == 2
    mixed, own = rows[(2, "16", "mixed")], rows[(2, "16", "own_model")]
    memory = mixed["static_bytes"] / (mixed["backbone_bytes"] + mixed["adapter_bytes"])
    assert checks["memory_ratio_k2"] == pytest.approx(memory)
    assert checks["memory_pass"] == (memory <= 1.1)
    throughput = mixed["examples_per_s"] / own["examples_per_s"]
    assert checks["throughput_ratio_k2"] == pytest.approx(throughput)
    assert checks["throughput_pass"] == (throughput >= 0.9)
    same_rows = rows[(2, "16", "mixed_same_rows")]["examples_per_s"] / own["examples_per_s"]
    assert checks["throughput_ratio_same_rows_k2"] == pytest.approx(same_rows)
    single = rows[(1, "16", "own_model")]
    assert mixed["peak_bytes"] > 0 and single["peak_bytes"] > 0  # the two children the checks need ran
    others = mixed["adapter_bytes"] - single["adapter_bytes"]
    assert checks["peak_ratio_k2"] == pytest.approx(mixed["peak_bytes"] / (single["peak_bytes"] + others))
    assert isinstance(checks["peak_pass"], bool)
    assert sum(r["peak_bytes"] is not None for r in smoke["rows"]) == 2  # smoke: only those two
