#!/usr/bin/env bash
# Resumable grid search: one run.py call per (lr, psl, epochs, seed), then search.py ranks the runs.
# Run from the repo root, e.g.
#   TASK_NAME=superglue DATASET_NAME=rte MODEL_TAG=roberta LRS="5e-3 1e-2" PSLS="8 16" EPOCHS="50 100" \
#     bash search_script/search.sh [extra run.py flags for every run]
# Each run writes $OUTPUT_ROOT/<DATASET_NAME>-<MODEL_TAG>-search/<DATASET_NAME>-<epochs>-<lr>-<psl>/ (plus
# -<seed> when SEEDS has more than one seed). A run whose best_results.json exists is skipped, so an
# interrupted search resumes where it stopped; a failed run is reported, the search goes on and exits 1.
# DRY_RUN=1 prints the commands instead of running them. Runs do not save checkpoints (as in the original);
# add EXTRA_ARGS="--save_strategy epoch --save_total_limit 1" to keep them. NER/SRL: set MAX_SEQ_LENGTH and
# EXTRA_ARGS="--do_predict --pad_to_max_length False" as in run_script/.
set -euo pipefail

TASK_NAME=${TASK_NAME:?"set TASK_NAME (superglue, glue, ner, srl or qa)"}
DATASET_NAME=${DATASET_NAME:?"set DATASET_NAME (e.g. rte)"}
MODEL_NAME_OR_PATH=${MODEL_NAME_OR_PATH:-roberta-large}
MODEL_TAG=${MODEL_TAG:-roberta}              # the <MODEL> of the folder name and of search.py
LRS=${LRS:-"5e-3 7e-3 1e-2"}
PSLS=${PSLS:-"4 8 16 32 64 128"}
EPOCHS=${EPOCHS:-"20 40 60 80 100 120"}
SEEDS=${SEEDS:-11}
BS=${BS:-16}
MAX_SEQ_LENGTH=${MAX_SEQ_LENGTH:-128}
DROPOUT=${DROPOUT:-0.1}
METHOD=${METHOD:---prefix}                   # --prefix (P-tuning v2) or --prompt
EXTRA_ARGS=${EXTRA_ARGS:-}                   # more run.py flags, split on spaces
METRIC=${METRIC:-}                           # empty: search.py takes the task's main metric
DATA_DIR=${DATA_DIR:-}
OUTPUT_ROOT=${OUTPUT_ROOT:-checkpoints}
PYTHON=${PYTHON:-python}
DRY_RUN=${DRY_RUN:-0}

read -ra extra <<<"$EXTRA_ARGS"
read -ra seeds <<<"$SEEDS"
search_dir="$OUTPUT_ROOT/$DATASET_NAME-$MODEL_TAG-search"

run() {  # run a command, or print it (shell-quoted) under DRY_RUN=1
  if [[ "$DRY_RUN" == 1 ]]; then printf '%q ' "$@" && echo; else "$@"; fi
}

failed=()
for lr in $LRS; do
  for psl in $PSLS; do
    for epoch in $EPOCHS; do
      for seed in "${seeds[@]}"; do
        name="$DATASET_NAME-$epoch-$lr-$psl"
        if ((${#seeds[@]} > 1)); then name="$name-$seed"; fi
        out="$search_dir/$name"
        if [[ -f "$out/best_results.json" ]]; then
          echo "skip (done): $out"
          continue
        fi
        # shellcheck disable=SC2086  # $PYTHON may be a command with arguments
        run $PYTHON run.py \
          --model_name_or_path "$MODEL_NAME_OR_PATH" \
          --task_name "$TASK_NAME" \
          --dataset_name "$DATASET_NAME" \
          ${DATA_DIR:+--data_dir "$DATA_DIR"} \
          --do_train \
          --do_eval \
          --max_seq_length "$MAX_SEQ_LENGTH" \
          --per_device_train_batch_size "$BS" \
          --learning_rate "$lr" \
          --num_train_epochs "$epoch" \
          "$METHOD" \
          --pre_seq_len "$psl" \
          --hidden_dropout_prob "$DROPOUT" \
          --seed "$seed" \
          --output_dir "$out" \
          --overwrite_output_dir \
          --eval_strategy epoch \
          --save_strategy no \
          ${extra[@]+"${extra[@]}"} \
          "$@" || failed+=("$out")
      done
    done
  done
done

if ((${#failed[@]})); then
  printf 'FAILED run: %s\n' "${failed[@]}" >&2
fi
# shellcheck disable=SC2086
run $PYTHON search.py "$DATASET_NAME" "$MODEL_TAG" ${METRIC:+"$METRIC"} --root "$OUTPUT_ROOT"
((${#failed[@]} == 0))
