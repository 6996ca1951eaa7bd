#!/usr/bin/env bash
# P-tuning v2 (--prefix), bert-large-cased, SuperGLUE WiC.
# Expected: dev accuracy 75.1, best epoch 56 (0-based) of 80 (BERT-large table of the README re-run).
# Hyper-parameters: exactly the original's run_script/run_wic_bert.sh (THUDM/P-tuning-v2).
# The only original script with --prefix_projection (and its small lr) and --template_id 1.
# Data: the Hub copy, or DATA_DIR=<folder holding WiC/{train,val,test}.jsonl> (the official SuperGLUE layout).
# Run from the repo root:  bash run_script/run_wic_bert.sh [extra run.py flags]
# The variables below can be overridden from the environment.
set -euo pipefail

MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-bert-large-cased}
DATA_DIR=${DATA_DIR:-}
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/wic-bert}
PYTHON=${PYTHON:-python}

$PYTHON run.py \
  --model_name_or_path "$MODEL_NAME_OR_PATH" \
  --task_name superglue \
  --dataset_name wic \
  ${DATA_DIR:+--data_dir "$DATA_DIR"} \
  --do_train \
  --do_eval \
  --max_seq_length 128 \
  --per_device_train_batch_size 16 \
  --learning_rate 1e-4 \
  --num_train_epochs 80 \
  --prefix \
  --pre_seq_len 20 \
  --hidden_dropout_prob 0.1 \
  --seed 44 \
  --prefix_projection \
  --prefix_hidden_size 512 \
  --template_id 1 \
  --output_dir "$OUTPUT_DIR" \
  --eval_strategy epoch \
  --save_strategy epoch \
  --save_total_limit 1 \
  "$@"
