#!/usr/bin/env bash
# Resumable grid search: one run.py call per (lr, psl, epochs, seed), then search.py ranks the runs.
# Run from the repo root, e.g.
#   TASK_NAME=superglue DATASET_NAME=rte MODEL_TAG=roberta LRS="5e-3 1e-2" PSLS="8 16" EPOCHS="50 100" \
#     bash search_script/search.sh [extra run.py flags for every run]
# Each run writes $OUTPUT_ROOT/<DATASET_NAME>-<MODEL_TAG>-search/<NAME>/ where NAME holds every swept or set
# hyper-parameter that changes results: <DATASET_NAME>-<epochs>-<lr>-<psl>-<method>-drop<DROPOUT>-bs<BS>
# [-len<MAX_SEQ_LENGTH>][-proj]-seed<seed>, e.g. copa-20-5e-3-4-prefix-drop0.1-bs16-len128-seed11.
# Skipping and resuming: a folder counts as this run's only if its args.json (written by run.py) recorded the same
# result-changing arguments that run.py's own parser gives this sweep's flags (EXTRA_ARGS and extra flags
# included; output paths, logging and cache flags excepted): the rule run.py resumes by (search.py --same-args). Then it is skipped when it holds a complete best_results.json ("skip (done)"), else run
# again there from scratch (--overwrite_output_dir, passed to every run): unfinished, or stopped by a non-finite
# loss (best_results.json marked "stopped"; resuming would restore a checkpoint on the way to the divergence).
# A folder that recorded other arguments (or best_results.json without args.json) is never taken for this run nor
# overwritten: a warning names the differences and the run goes to <NAME>-2 (then -3 ...), checked the same way.
# A failed run is reported, the search goes on and exits 1. DRY_RUN=1 prints the commands instead of running
# them (the checks still run). Runs do not save checkpoints (as in the original); add
# EXTRA_ARGS="--save_strategy epoch --save_total_limit 1" to keep them. NER/SRL: set MAX_SEQ_LENGTH and
# EXTRA_ARGS="--do_predict --pad_to_max_length False" as in run_script/. MAX_SEQ_LENGTH unset: run.py's default for
# the family (384 for qa, 128 otherwise). CHECK_PYTHON (default python, the project's environment) runs the folder check.
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
MAX_SEQ_LENGTH=${MAX_SEQ_LENGTH:-}           # empty: run.py's default for the family
DROPOUT=${DROPOUT:-0.1}
METHOD=${METHOD:---prefix}                   # --prefix (P-tuning v2) or --prompt
PROJECTION=${PROJECTION:-0}                  # 1: --prefix_projection (the MLP reparameterisation)
EXTRA_ARGS=${EXTRA_ARGS:-}                   # more run.py flags, split on spaces
METRIC=${METRIC:-}                           # empty: search.py takes the task's main metric
DATA_DIR=${DATA_DIR:-}
OUTPUT_ROOT=${OUTPUT_ROOT:-checkpoints}
PYTHON=${PYTHON:-python}
DRY_RUN=${DRY_RUN:-0}
CHECK_PYTHON=${CHECK_PYTHON:-python}
repo="$(cd "$(dirname "$0")/.." && pwd)"  # search.py of this checkout, for the folder check

case "$METHOD" in
  --prefix | --prompt) method=${METHOD#--} ;;
  *) echo "METHOD must be --prefix or --prompt, got '$METHOD'" >&2 && exit 2 ;;
esac

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
        name="$DATASET_NAME-$epoch-$lr-$psl-$method-drop$DROPOUT-bs$BS"
        name="$name${MAX_SEQ_LENGTH:+-len$MAX_SEQ_LENGTH}"
        if [[ "$PROJECTION" == 1 ]]; then name="$name-proj"; fi
        name="$name-seed$seed"
        flags=(
          --model_name_or_path "$MODEL_NAME_OR_PATH"
          --task_name "$TASK_NAME"
          --dataset_name "$DATASET_NAME"
          ${DATA_DIR:+--data_dir "$DATA_DIR"}
          --do_train
          --do_eval
          ${MAX_SEQ_LENGTH:+--max_seq_length "$MAX_SEQ_LENGTH"}
          --per_device_train_batch_size "$BS"
          --learning_rate "$lr"
          --num_train_epochs "$epoch"
          "$METHOD"
          --pre_seq_len "$psl"
          --hidden_dropout_prob "$DROPOUT"
          --seed "$seed"
          --overwrite_output_dir
          --eval_strategy epoch
          --save_strategy no
        )
        if [[ "$PROJECTION" == 1 ]]; then flags+=(--prefix_projection); fi
        flags+=(${extra[@]+"${extra[@]}"} "$@")
        # The first of <name>, <name>-2, ... that is free or recorded these same arguments.
        out="$search_dir/$name" k=1
        while true; do
          if [[ -f "$out/args.json" ]]; then
            rc=0 && diffs=$("$CHECK_PYTHON" "$repo/search.py" --same-args "$out" -- "${flags[@]}") || rc=$?
            if ((rc == 0)); then
              if [[ -f "$out/best_results.json" ]]; then
                rc=0 && why=$("$CHECK_PYTHON" "$repo/search.py" --finished "$out") || rc=$?
                if ((rc == 0)); then
                  echo "skip (done): $out"
                  continue 2
                elif ((rc != 1)); then
                  echo "error: could not read $out/best_results.json (exit $rc)" >&2 && exit 2
                fi
                echo "warning: running $out again from scratch (--overwrite_output_dir): $why" >&2
              fi
              break  # this run, unfinished or stopped: run it again there
            elif ((rc != 1 && rc != 3)); then
              echo "error: could not compare $out/args.json with this sweep's arguments (exit $rc)" >&2 && exit 2
            fi
            echo "warning: $out recorded other arguments ($diffs); not this run" >&2
          elif [[ -f "$out/best_results.json" ]]; then
            echo "warning: $out has best_results.json but no args.json: cannot tell its arguments; not this run" >&2
          else
            break  # free, or a run that died before writing args.json
          fi
          k=$((k + 1)) out="$search_dir/$name-$k"
        done
        # shellcheck disable=SC2086  # $PYTHON may be a command with arguments
        run $PYTHON run.py "${flags[@]}" --output_dir "$out" || failed+=("$out")
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
