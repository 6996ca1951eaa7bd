#!/usr/bin/env bash
# P-tuning v2 (--prefix), roberta-large, SuperGLUE WiC.
# Expected: dev accuracy 73.7, best epoch 31 (0-based) of 50 (RoBERTa-large table of the README re-run).
# Hyper-parameters: exactly the original's run_script/run_wic_roberta.sh (THUDM/P-tuning-v2).
# Data: the Hub copy, or DATA_DIR=<folder holding WiC/{train,val,test}.jsonl> (the official SuperGLUE layout).
# Run from the repo root:  bash run_script/run_wic_roberta.sh [extra run.py flags]
# The variables below can be overridden from the environment.
set -euo pipefail

MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-roberta-large}
DATA_DIR=${DATA_DIR:-}
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/wic-roberta}
PYTHON=${PYTHON:-python}

$PYTHON run.py \
  --model_name_or_path "$MODEL_NAME_OR_PATH" \
  --task_name superglue \
  --dataset_name wic \
  ${DATA_DIR:+--data_dir "$DATA_DIR"} \
  --do_train \
  --do_eval \
  --max_seq_length 128 \
  --per_device_train_batch_size 32 \
  --learning_rate 1e-2 \
  --num_train_epochs 50 \
  --prefix \
  --pre_seq_len 8 \
  --hidden_dropout_prob 0.1 \
  --seed 11 \
  --template_id 0 \
  --output_dir "$OUTPUT_DIR" \
  --eval_strategy epoch \
  --save_strategy epoch \
  --save_total_limit 1 \
  "$@"
