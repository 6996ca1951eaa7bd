"""benchmarks/speed.py (+ benchmarks/cpu/): the core run on a tiny random BERT (2 layers x 32), one repeat; shapes of the result only.

Timings are not asserted (they are machine noise at this size); byte counts are exact formulas of the config."""

import dataclasses
import json
import math

import pytest
import torch

from benchmarks.common.spec import TINY
from benchmarks.cpu.report import report
from benchmarks.cpu.variants import TRAIN_VARIANTS
from benchmarks.speed import run_benchmark

REQUIRED = (
    "step_ratio_prefix_vs_finetune",
    "step_ratio_prompt_vs_finetune",
    "optimizer_state_ratio_prefix_vs_finetune",
    "eval_throughput_ratio_prefix_vs_frozen",
)


@pytest.fixture(scope="module")
def result():
    lines, threads = [], torch.get_num_threads()
    # threads=1: on a loaded shared machine two OpenMP threads make these micro-steps 100x slower; the script's
    # default (2) is what the benchmark runs with.
    out = run_benchmark(
        [TINY],
        rounds=1,
        warmup=0,
        steps=1,
        prefix_lengths=(4, 8),
        seq_lengths=(8, 16),
        threads=1,
        log=lines.append,
    )
    report(out, log=lines.append)
    assert torch.get_num_threads() == threads  # restored for the rest of the test session
    assert any(line.lstrip().startswith(("PASS", "MISS")) for line in lines)
    return out


def test_required_keys_and_json(result):
    for key in (*REQUIRED, "torch", "transformers", "threads", "date", "models", "sweeps", "targets"):
        assert key in result
    assert result["threads"] == 1
    assert set(result["targets"]) == {REQUIRED[0], REQUIRED[2], REQUIRED[3]}
    assert json.loads(json.dumps(result)) == result  # plain JSON, nothing lost


def test_optimizer_state_is_two_fp32_moments_per_trainable_parameter(result):
    train = result["models"][TINY.name]["train"]
    H, L, P = TINY.hidden, TINY.layers, TINY.pre_seq_len
    assert train["prefix"]["trainable_params"] == P * 2 * L * H + H * TINY.num_labels + TINY.num_labels
    assert train["head_only"]["trainable_params"] == H * TINY.num_labels + TINY.num_labels
    for variant in TRAIN_VARIANTS:
        row = train[variant]
        assert row["optimizer_state_bytes"] == 2 * 4 * row["trainable_params"], variant
        assert row["grad_bytes"] == 4 * row["trainable_params"], variant
    assert train["finetune"]["trainable_params"] == train["finetune"]["total_params"]


def test_ratios_positive_finite(result):
    ratios = [result[k] for k in REQUIRED]
    ratios += list(result["models"][TINY.name]["ratios"].values())
    ratios += [r["prefix_vs_finetune"] for r in result["sweeps"]["seq_len"]]
    ratios += [r["prefix_vs_first_P"] for r in result["sweeps"]["prefix_len"]]
    for value in ratios:
        assert isinstance(value, float) and math.isfinite(value) and value > 0
    assert [r["pre_seq_len"] for r in result["sweeps"]["prefix_len"]] == [4, 8]
    assert [r["seq_len"] for r in result["sweeps"]["seq_len"]] == [8, 16]


def test_saved_activations_counted(result):
    train = result["models"][TINY.name]["train"]
    assert train["finetune"]["saved_activation_bytes"] > train["head_only"]["saved_activation_bytes"] > 0
    assert train["prefix"]["saved_activation_bytes"] > train["head_only"]["saved_activation_bytes"]


def test_rounds_by_model_overrides_the_big_models_rounds():
    other = dataclasses.replace(TINY, name="tiny-other")
    out = run_benchmark(
        [TINY, other],
        rounds=1,
        warmup=0,
        steps=1,
        prefix_lengths=(),
        seq_lengths=(),
        threads=1,
        rounds_by_model={other.name: 2},
        log=lambda line: None,
    )
    assert out["models"][TINY.name]["train"]["prefix"]["n_samples"] == 1
    assert out["models"][other.name]["train"]["prefix"]["n_samples"] == 2
    assert len(out["models"][other.name]["train"]["finetune"]["ms_round_medians"]) == 2
    assert set(out["models"][other.name]["targets"]) == set(out["targets"])
