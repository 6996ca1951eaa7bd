#!/usr/bin/env bash
# P-tuning v2 (--prefix), microsoft/deberta-v2-xlarge, SuperGLUE RTE.
# Expected: no reference number (the README re-run has no DeBERTa row).
# Hyper-parameters: NOT from the original (it has no such script); a starting point, tune them with
# search_script/search.sh.
# Data: the Hub copy, or DATA_DIR=<folder holding RTE/{train,val,test}.jsonl> (the official SuperGLUE layout).
# Run from the repo root:  bash run_script/run_rte_deberta.sh [extra run.py flags]
# The variables below can be overridden from the environment.
set -euo pipefail

MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-microsoft/deberta-v2-xlarge}
DATA_DIR=${DATA_DIR:-}
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/rte-deberta}
PYTHON=${PYTHON:-python}

$PYTHON run.py \
  --model_name_or_path "$MODEL_NAME_OR_PATH" \
  --task_name superglue \
  --dataset_name rte \
  ${DATA_DIR:+--data_dir "$DATA_DIR"} \
  --do_train \
  --do_eval \
  --max_seq_length 128 \
  --per_device_train_batch_size 16 \
  --learning_rate 5e-3 \
  --num_train_epochs 60 \
  --prefix \
  --pre_seq_len 16 \
  --hidden_dropout_prob 0.1 \
  --seed 11 \
  --output_dir "$OUTPUT_DIR" \
  --eval_strategy epoch \
  --save_strategy epoch \
  --save_total_limit 1 \
  "$@"
