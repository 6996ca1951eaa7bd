#!/usr/bin/env bash
# The original's COPA search (search_script/search_copa_roberta.sh, THUDM/P-tuning-v2): P-tuning v2 with
# roberta-large, bs 16, max_seq_length 128, dropout 0.1, seed 11, over
#   lr {5e-3,7e-3,1e-2} x pre_seq_len {4,8,16,32,64,128} x epochs {20,40,60,80,100,120} = 108 runs,
# each in checkpoints/copa-roberta-search/copa-<epochs>-<lr>-<psl>-prefix-drop0.1-bs16-len128-seed11/ (the
# original's copa-<epochs>-<lr>-<psl> plus the fixed settings, see search.sh), then `search.py copa roberta` picks
# the best dev accuracy. Epochs is a real hyper-parameter here: it sets the length of the linear lr decay.
# Reference: the released run_copa_roberta.sh (lr 9e-3, psl 8, 120 epochs; not on this grid) gives 92.0.
# Run from the repo root:  bash search_script/search_copa_roberta.sh [extra run.py flags for every run]
# Resumable (finished runs are skipped); DRY_RUN=1 prints the 108 commands. Engine: search_script/search.sh.
set -euo pipefail

export TASK_NAME=superglue DATASET_NAME=copa
export MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-roberta-large} MODEL_TAG=roberta
export LRS="5e-3 7e-3 1e-2" PSLS="4 8 16 32 64 128" EPOCHS="20 40 60 80 100 120" SEEDS=11
export BS=16 MAX_SEQ_LENGTH=128 DROPOUT=0.1 METHOD=--prefix PROJECTION=0

exec bash "$(dirname "$0")/search.sh" "$@"
