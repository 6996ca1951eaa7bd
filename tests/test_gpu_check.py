"""benchmarks/gpu_check.py --smoke: the GPU check's whole code path on CPU with tiny configs, so it cannot rot.

The smoke run writes into tmp_path (never benchmarks/results/gpu.json). Timings are not asserted (noise at this
size); the reference-equality figures must pass, and the JSON must hold every key the GPU run reports."""

import json
import os

import pytest
import torch
import transformers

from benchmarks.common.reference import reference_batch
from benchmarks.gpu.correctness import TOLERANCE, reference_bert, rel_err
from benchmarks.gpu.models import load, save_backbone
from benchmarks.gpu.speed import METHODS, PRECISIONS
from benchmarks.gpu_check import DEFAULT_OUT, main


def _stamp(path):
    return os.stat(path).st_mtime_ns if os.path.exists(path) else None


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "gpu.json"
    before, threads = _stamp(DEFAULT_OUT), torch.get_num_threads()
    verbosity = transformers.utils.logging.get_verbosity()
    returned = main(["--smoke", "--out", str(out)])
    assert _stamp(DEFAULT_OUT) == before  # the committed GPU results are never overwritten by a smoke run
    assert torch.get_num_threads() == threads  # the test session's settings are left as they were
    assert transformers.utils.logging.get_verbosity() == verbosity
    saved = json.loads(out.read_text())
    return returned, saved


def test_json_holds_every_section_and_the_environment(smoke):
    returned, saved = smoke
    assert json.loads(json.dumps(returned)) == saved
    for key in ("mode", "date", "environment", "correctness", "sdpa_backends", "speed", "compile", "targets"):
        assert key in saved, key
    env = saved["environment"]
    for key in ("torch", "cuda", "transformers", "device", "numerics", "numerics_at_end"):
        assert key in env, key
    assert "matmul_allow_tf32" in env["numerics"] and env["numerics"] == env["numerics_at_end"]
    assert set(saved["section_end_s"]) == {"correctness", "sdpa_backends", "speed", "compile"}
    assert saved["skipped"] == []
    assert set(saved["targets"]) == {
        "fp32_reference_equality",
        "bf16_peak_memory_ratio_prefix_vs_finetune",
        "step_ratio_prefix_vs_finetune_reported",
    }


def test_reference_equality_passes_on_cpu(smoke):
    corr = smoke[1]["correctness"]
    assert corr["all_pass"] and corr["all_pass_fp32"] and corr["all_pass_bf16"], [
        c for c in corr["cases"] if not c["pass"]
    ]
    assert smoke[1]["targets"]["fp32_reference_equality"]["pass"] is True
    seen = {
        (c["check"], c["backbone"], c["attn"], c.get("shift_positions"), c["precision"])
        for c in corr["cases"]
    }
    for kind in ("bert", "roberta"):
        for attn in ("eager", "sdpa"):
            for precision in ("fp32", "bf16"):
                assert ("masked_prefix", kind, attn, None, precision) in seen
                for shift in (True, False):
                    assert ("reference_logits", kind, attn, shift, precision) in seen
    for precision in ("fp32", "bf16"):
        assert ("reference_layer0", "deberta-v2", "adapter", None, precision) in seen
        assert ("masked_prefix", "deberta-v2", "adapter", None, precision) in seen
    fp32 = [c["rel_err"] for c in corr["cases"] if c["precision"] == "fp32"]
    assert max(fp32) < TOLERANCE["fp32"] / 10  # float32 on CPU lands near 1e-7


def test_the_reference_can_fail(tmp_path):
    """The same reference with positions shifted the other way is far off: the check is not vacuous."""
    model = load(save_backbone("roberta", str(tmp_path)), "cpu", shift=True).eval()
    ids, mask = reference_batch(model.config.vocab_size)
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
        right = reference_bert(model, ids, mask, shift=True)[1]
        wrong = reference_bert(model, ids, mask, shift=False)[1]
    assert rel_err(got, right) < TOLERANCE["fp32"]
    assert rel_err(got, wrong) > 100 * TOLERANCE["fp32"]


def test_sdpa_probe_records_the_dispatcher_and_each_backend(smoke):
    cases = smoke[1]["sdpa_backends"]["cases"]
    assert len(cases) == 16  # fp32/bf16 x padded or not x train/eval x prefix/bare
    for c in cases:
        assert c["dispatcher_choice"] and "error" not in c
        assert c["forced"]["MATH"] == "ok"  # the math kernel runs anything
        assert set(c["forced"]) >= {"FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH"}
    padded = [c for c in cases if c["model"] == "prefix" and c["padded_batch"]]
    assert all(c["calls"][0]["mask"] is not None for c in padded)  # the 4-D mask over [prefix; tokens]
    assert all(c["calls"][0]["k"][2] == c["calls"][0]["q"][2] + 6 for c in padded)  # P = 6 extra keys


def test_speed_has_every_method_and_precision(smoke):
    sp = smoke[1]["speed"]
    for precision in PRECISIONS:
        for method in METHODS:
            r = sp["train"][precision][method]
            assert r["ms_median"] > 0 and r["samples_per_s"] > 0 and len(r["ms_all"]) == sp["timed_steps"]
            assert r["peak_allocated_bytes"] is None  # CUDA-only figure
            assert (r["grad_scale"] is not None) == (precision == "fp16")  # GradScaler only for fp16
        assert set(sp["eval"][precision]) == {"frozen", "prefix", "prompt"}
        ratios = sp["ratios"][precision]
        assert (
            ratios["step_ratio_prefix_vs_finetune"] > 0
            and ratios["eval_throughput_ratio_prefix_vs_frozen"] > 0
        )
        assert ratios["peak_memory_ratio_prefix_vs_finetune"] is None
    assert sp["parameters"]["prefix"]["trainable"] < sp["parameters"]["finetune"]["trainable"]
    assert smoke[1]["targets"]["step_ratio_prefix_vs_finetune_reported"]["pass"] is True
    assert (
        smoke[1]["targets"]["bf16_peak_memory_ratio_prefix_vs_finetune"]["pass"] is None
    )  # not measured on CPU


def test_checkpointing_and_compile_run_with_the_prefix(smoke):
    ckpt = smoke[1]["speed"]["gradient_checkpointing"]
    # a gradient reaches the input side through every checkpointed layer
    for method in ("finetune", "prefix"):
        assert ckpt[method]["pass"] is True and ckpt[method]["input_side_grad_norm"] > 0, ckpt
    assert ckpt["peak_memory_ratio_prefix_vs_finetune"] is None  # CUDA memory only
    bf16_backbone = smoke[1]["speed"]["bf16_backbone"]
    assert "error" not in bf16_backbone and bf16_backbone["ms_median"] > 0, bf16_backbone
    assert 0 < bf16_backbone["loss"] < 10 and bf16_backbone["peak_allocated_bytes_vs_finetune"] is None
    comp = smoke[1]["compile"]
    assert comp["pass"] is True, comp
    assert comp["backend"] == "aot_eager" and comp["graph_breaks"] >= 0 and comp["first_step_s"] > 0


def test_a_failing_section_and_an_exhausted_budget_still_write_a_report(tmp_path, monkeypatch, capsys):
    import benchmarks.gpu_check as gpu_check

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(gpu_check, "correctness", broken)
    out = tmp_path / "gpu.json"
    result = main(["--smoke", "--out", str(out), "--budget-s", "0"])
    saved = json.loads(out.read_text())
    assert saved["correctness"] == {"error": "RuntimeError: boom"}
    assert "sdpa_backends" in saved["skipped"] and "compile" in saved["skipped"]
    assert {f"speed/{p}/{m}" for p in PRECISIONS for m in METHODS} <= set(saved["skipped"])
    assert (
        result["compile"]["skipped"] == "time budget"
        and not saved["targets"]["fp32_reference_equality"]["pass"]
    )
    assert "correctness: FAILED TO RUN: RuntimeError: boom" in capsys.readouterr().out


@pytest.fixture
def committed(tmp_path, monkeypatch):
    """A stand-in for benchmarks/results/gpu.json (DEFAULT_OUT), so that a regression cannot touch the real one."""
    import benchmarks.gpu_check as gpu_check

    path = tmp_path / "results" / "gpu.json"
    path.parent.mkdir()
    path.write_text('{"mode": "gpu"}\n')
    monkeypatch.setattr(gpu_check, "DEFAULT_OUT", str(path))
    monkeypatch.setattr(gpu_check, "correctness", lambda *args: {"cases": []})  # seconds: nothing heavy runs
    return path


def test_smoke_without_out_writes_to_the_temp_folder_not_the_committed_results(
    committed, tmp_path, monkeypatch, capsys
):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    main(["--smoke", "--budget-s", "0"])  # every timed section skipped for the budget
    assert committed.read_text() == '{"mode": "gpu"}\n'
    smoke_out = tmp_path / "tmp" / "gpu_check_smoke.json"
    assert json.loads(smoke_out.read_text())["mode"] == "smoke (CPU, tiny sizes)"
    printed = capsys.readouterr().out
    assert f"gpu_check --smoke: writing {smoke_out}" in printed and f"wrote {smoke_out}" in printed


def test_smoke_refuses_to_write_the_committed_results(committed):
    with pytest.raises(SystemExit, match="--smoke would overwrite the committed GPU results"):
        main(["--smoke", "--budget-s", "0", "--out", str(committed)])
    assert committed.read_text() == '{"mode": "gpu"}\n'


def test_the_gpu_run_still_writes_the_committed_results_by_default(committed, monkeypatch):
    import benchmarks.gpu_check as gpu_check

    calls = []
    monkeypatch.setattr(gpu_check, "run", lambda smoke, out, *rest: calls.append((smoke, out)) or {})
    main([])
    main(["--out", "elsewhere.json"])
    assert calls == [(False, str(committed)), (False, "elsewhere.json")]
