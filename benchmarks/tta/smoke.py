"""`python -m benchmarks.time_to_accuracy --smoke [--out DIR]`: the whole time-to-accuracy path in seconds.

A tiny random BERT (2 layers x 32, MiniLM's tokenizer: benchmarks/common/tiny.py) and generated CoNLL-2003 files
stand in for MiniLM and the real data; 2 epochs; variants finetune_lr1e-3, defaults, a smoke BEST (prefix dropout 0,
linear schedule), and the outside recipe with BEST's options; seeds 1 and 2 (outside: 11 and 12). Cells run as real
subprocesses (benchmarks/tta/cell.py -> run.py) and the report is written to DIR/results (default: a temp dir).
The grid is tta/grid.py's GRID with the smoke's data, sizes and BEST (a copy: GRID itself is left as it is).
"""

from __future__ import annotations

import dataclasses
import os
import random
import tempfile

from benchmarks.common.tiny import save_tiny_model
from benchmarks.tta import report as tta_report
from benchmarks.tta.cell import run_cells
from benchmarks.tta.grid import GRID, Grid

WORDS = {"B-PER": ["Anna", "Peter", "Maria"], "B-LOC": ["Paris", "Berlin", "Rome"],
         "B-ORG": ["Reuters", "Siemens"], "O": ["visited", "met", "in", "the", "said", "today", "a", "report"]}  # fmt: skip
VARIANTS = ["finetune_lr1e-3", "defaults", "best", "outside_best"]


def write_data(root: str, seed: int = 0) -> str:
    rng = random.Random(seed)
    for split, n in (("train", 48), ("valid", 12), ("test", 12)):
        lines = ["-DOCSTART- -X- -X- O", ""]
        for _ in range(n):
            for _ in range(rng.randint(4, 9)):
                tag = rng.choice(list(WORDS))
                lines.append(f"{rng.choice(WORDS[tag])} NN I-NP {tag}")
            lines.append("")
        with open(os.path.join(root, f"{split}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return root


def smoke_grid(data: str) -> Grid:
    """GRID on the generated CoNLL-2003 files: P 4, 2 epochs, one more fine-tuning lr, the smoke's BEST."""
    dataset = f"--task_name ner --dataset_name conll2003 --data_dir {data}"
    return dataclasses.replace(
        GRID,
        datasets={"conll2003": dataset},
        defaults={"conll2003": {**GRID.defaults["conll2003"], "pre_seq_len": 4, "num_train_epochs": 2}},
        finetune_epochs={"conll2003": 2},
        outside={
            "dataset": dataset,
            "recipe": {**GRID.outside["recipe"], "pre_seq_len": 4, "num_train_epochs": 2},
        },
        variants=[*GRID.variants, "finetune_lr1e-3"],
        best={"conll2003": {"prefix_dropout": 0.0, "lr_schedule": "linear"}},
    )


def run(out: str | None = None, in_process: bool = False) -> dict:
    out = out or tempfile.mkdtemp(prefix="tta_smoke_")
    os.makedirs(os.path.join(out, "data"), exist_ok=True)
    grid = smoke_grid(write_data(os.path.join(out, "data")))
    model = save_tiny_model(os.path.join(out, "model"), "bert")
    order = grid.cells(["conll2003"], VARIANTS, [1, 2])
    env = {"HF_DATASETS_CACHE": os.path.join(out, "cache")}
    run_cells(grid, order, os.path.join(out, "runs"), model, env=env, in_process=in_process)
    report = tta_report.build(os.path.join(out, "runs"), recipe=grid.recipe_text())
    tta_report.write(report, os.path.join(out, "results"))
    print(f"[tta smoke] report in {out}/results", flush=True)
    return report
