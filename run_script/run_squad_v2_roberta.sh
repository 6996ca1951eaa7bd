#!/usr/bin/env bash
# P-tuning v2 (--prefix), roberta-large, QA SQuAD 2.0.
# Expected: dev EM/F1 81.3/84.7, best epoch 9 (0-based) of 10 (RoBERTa-large table of the README re-run).
# Hyper-parameters: exactly the original's run_script/run_squad_v2_roberta.sh (THUDM/P-tuning-v2).
# --max_seq_length 384 / --doc_stride 128 are the values the original hard-coded for QA.
# Data: the Hub copy, or DATA_DIR=<a local copy> (see README).
# Run from the repo root:  bash run_script/run_squad_v2_roberta.sh [extra run.py flags]
# The variables below can be overridden from the environment.
set -euo pipefail

MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-roberta-large}
DATA_DIR=${DATA_DIR:-}
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/squad_v2-roberta}
PYTHON=${PYTHON:-python}

$PYTHON run.py \
  --model_name_or_path "$MODEL_NAME_OR_PATH" \
  --task_name qa \
  --dataset_name squad_v2 \
  ${DATA_DIR:+--data_dir "$DATA_DIR"} \
  --do_train \
  --do_eval \
  --max_seq_length 384 \
  --per_device_train_batch_size 8 \
  --learning_rate 5e-3 \
  --num_train_epochs 10 \
  --prefix \
  --pre_seq_len 8 \
  --hidden_dropout_prob 0.2 \
  --seed 11 \
  --doc_stride 128 \
  --output_dir "$OUTPUT_DIR" \
  --eval_strategy epoch \
  --save_strategy epoch \
  --save_total_limit 1 \
  "$@"
