#!/usr/bin/env bash
# Prompt tuning (--prompt), roberta-large, SuperGLUE RTE.
# Expected: no reference number; well below P-tuning v2 (issue #9: --prompt did not reproduce on RTE).
# Hyper-parameters: NOT from the original (it has no --prompt script); a starting point, tune them with
# search_script/search.sh.
# Baseline: shallow prompt tuning (--prompt, Lester et al.): prompts at the input only, frozen backbone.
# Data: the Hub copy, or DATA_DIR=<folder holding RTE/{train,val,test}.jsonl> (the official SuperGLUE layout).
# Run from the repo root:  bash run_script/run_rte_roberta_prompt.sh [extra run.py flags]
# The variables below can be overridden from the environment.
set -euo pipefail

MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-roberta-large}
DATA_DIR=${DATA_DIR:-}
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/rte-roberta-prompt}
PYTHON=${PYTHON:-python}

$PYTHON run.py \
  --model_name_or_path "$MODEL_NAME_OR_PATH" \
  --task_name superglue \
  --dataset_name rte \
  ${DATA_DIR:+--data_dir "$DATA_DIR"} \
  --do_train \
  --do_eval \
  --max_seq_length 128 \
  --per_device_train_batch_size 32 \
  --learning_rate 1e-2 \
  --num_train_epochs 100 \
  --prompt \
  --pre_seq_len 16 \
  --hidden_dropout_prob 0.1 \
  --seed 11 \
  --output_dir "$OUTPUT_DIR" \
  --eval_strategy epoch \
  --save_strategy epoch \
  --save_total_limit 1 \
  "$@"
