#!/usr/bin/env bash
# Full fine-tuning, roberta-large, SuperGLUE RTE.
# Expected: no reference number (the original has no fine-tuning script).
# Hyper-parameters: standard full fine-tuning values (RoBERTa-paper style: small lr, warmup 6% of steps,
# weight decay 0.1), NOT from the original.
# Baseline: full fine-tuning (neither --prefix nor --prompt): every backbone weight is trained.
# Data: the Hub copy, or DATA_DIR=<folder holding RTE/{train,val,test}.jsonl> (the official SuperGLUE layout).
# Run from the repo root:  bash run_script/run_rte_roberta_finetune.sh [extra run.py flags]
# The variables below can be overridden from the environment.
set -euo pipefail

MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-roberta-large}
DATA_DIR=${DATA_DIR:-}
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/rte-roberta-finetune}
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
  --learning_rate 1e-5 \
  --num_train_epochs 20 \
  --hidden_dropout_prob 0.1 \
  --seed 11 \
  --warmup_steps 0.06 \
  --weight_decay 0.1 \
  --output_dir "$OUTPUT_DIR" \
  --eval_strategy epoch \
  --save_strategy epoch \
  --save_total_limit 1 \
  "$@"
