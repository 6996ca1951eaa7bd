"""`python benchmarks/time_to_accuracy.py --smoke [--out DIR]`: the whole time-to-accuracy path in seconds.

A tiny random BERT (2 layers x 32, MiniLM's tokenizer) and generated CoNLL-2003
files stand in for MiniLM and the real data; 2 epochs; variants finetune_lr1e-3, defaults, a smoke BEST (prefix dropout 0,
linear schedule), and the outside recipe with BEST's options; seeds 1 and 2 (outside: 11 and 12). Cells run as real
subprocesses (benchmarks/tta_cell.py -> run.py) and the report is written to DIR/results (default: a temp dir).
"""

from __future__ import annotations

import os
import random
import tempfile

from benchmarks import time_to_accuracy as tta
from benchmarks import tta_report
from benchmarks.paths import minilm_path

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


def write_model(path: str) -> str:
    """A tiny random BERT (2 x 32) with MiniLM's real WordPiece tokenizer, saved as a local model directory."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=512)  # fmt: skip
    BertModel(config).save_pretrained(path)
    return path


def run(out: str | None = None, in_process: bool = False) -> dict:
    out = out or tempfile.mkdtemp(prefix="tta_smoke_")
    os.makedirs(os.path.join(out, "data"), exist_ok=True)
    data = write_data(os.path.join(out, "data"))
    model = write_model(os.path.join(out, "model"))
    tta.DATASETS = {"conll2003": f"--task_name ner --dataset_name conll2003 --data_dir {data}"}
    tta.DEFAULTS = {"conll2003": {**tta.DEFAULTS["conll2003"], "pre_seq_len": 4, "num_train_epochs": 2}}
    tta.FINETUNE_EPOCHS = {"conll2003": 2}
    tta.OUTSIDE = {"dataset": tta.DATASETS["conll2003"],
                   "recipe": {**tta.OUTSIDE["recipe"], "pre_seq_len": 4, "num_train_epochs": 2}}  # fmt: skip
    best = {"conll2003": {"prefix_dropout": 0.0, "lr_schedule": "linear"}}
    if "finetune_lr1e-3" not in tta.VARIANTS:
        tta.VARIANTS.append("finetune_lr1e-3")
    order = tta.cells(["conll2003"], VARIANTS, [1, 2])
    env = {"HF_DATASETS_CACHE": os.path.join(out, "cache")}
    tta.run_cells(order, os.path.join(out, "runs"), model, best, env=env, in_process=in_process)
    report = tta_report.build(os.path.join(out, "runs"), recipe=tta.recipe_text(best))
    tta_report.write(report, os.path.join(out, "results"))
    print(f"[tta smoke] report in {out}/results", flush=True)
    return report
