#!/usr/bin/env bash
# P-tuning v2 (--prefix), microsoft/deberta-v2-xlarge, NER CoNLL03.
# Expected: no reference number (the README re-run has no DeBERTa row).
# Hyper-parameters: NOT from the original (it has no such script); a starting point, tune them with
# search_script/search.sh.
# --max_seq_length 496 (= 512 - pre_seq_len) with --pad_to_max_length False, as the other NER/SRL scripts.
# Data: DATA_DIR=<folder with the original's CoNLL03 files train.txt, valid.txt, test.txt> is recommended (the
# maintainers ask for these files, issue #43); without it the Hub copy eriktks/conll2003 is used.
# Run from the repo root:  bash run_script/run_conll03_deberta.sh [extra run.py flags]
# The variables below can be overridden from the environment.
set -euo pipefail

MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-microsoft/deberta-v2-xlarge}
DATA_DIR=${DATA_DIR:-}
OUTPUT_DIR=${OUTPUT_DIR:-checkpoints/conll2003-deberta}
PYTHON=${PYTHON:-python}

$PYTHON run.py \
  --model_name_or_path "$MODEL_NAME_OR_PATH" \
  --task_name ner \
  --dataset_name conll2003 \
  ${DATA_DIR:+--data_dir "$DATA_DIR"} \
  --do_train \
  --do_eval \
  --do_predict \
  --max_seq_length 496 \
  --per_device_train_batch_size 16 \
  --learning_rate 1e-2 \
  --num_train_epochs 30 \
  --prefix \
  --pre_seq_len 16 \
  --hidden_dropout_prob 0.1 \
  --seed 11 \
  --pad_to_max_length False \
  --output_dir "$OUTPUT_DIR" \
  --eval_strategy epoch \
  --save_strategy epoch \
  --save_total_limit 1 \
  "$@"
