#!/usr/bin/env bash
# P-tuning v2 (--prefix), roberta-large, NER CoNLL03.
# Expected: F1 91.8, best epoch 28 (0-based) of 30 (RoBERTa-large table of the README re-run; the README does
# not say dev or test: run.py reports best_eval_f1 and best_test_f1 at the best-dev epoch).
# Hyper-parameters: exactly the original's run_script/run_conll03_roberta.sh (THUDM/P-tuning-v2).
# Except --max_seq_length 501 (= 512 - pre_seq_len) with --pad_to_max_length False: the original passed 152
# but ignored it for NER/SRL (no padding, truncation at 512); this keeps every sentence whole as it did, with
# the shifted positions P..P+T-1 inside the 512-position table.
# Data: DATA_DIR=<folder with the original's CoNLL03 files train.txt, valid.txt, test.txt> is recommended (the
# maintainers ask for these files, issue #43); without it the Hub copy eriktks/conll2003 is used.
# Run from the repo root:  bash run_script/run_conll03_roberta.sh [extra run.py flags]
# The variables below can be overridden from the environment.
set -euo pipefail

MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-roberta-large}
DATA_DIR=${DATA_DIR:-}
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/conll2003-roberta}
PYTHON=${PYTHON:-python}

$PYTHON run.py \
  --model_name_or_path "$MODEL_NAME_OR_PATH" \
  --task_name ner \
  --dataset_name conll2003 \
  ${DATA_DIR:+--data_dir "$DATA_DIR"} \
  --do_train \
  --do_eval \
  --do_predict \
  --max_seq_length 501 \
  --per_device_train_batch_size 16 \
  --learning_rate 3e-2 \
  --num_train_epochs 30 \
  --prefix \
  --pre_seq_len 11 \
  --hidden_dropout_prob 0.1 \
  --seed 11 \
  --pad_to_max_length False \
  --output_dir "$OUTPUT_DIR" \
  --eval_strategy epoch \
  --save_strategy epoch \
  --save_total_limit 1 \
  "$@"
