#!/usr/bin/env bash
# The paper's protocol on one GPU, for any Hugging Face encoder: every method (Standard, Adv-Base,
# Adv-PTWD and Adv-Mixout tuned on dev, RIFT) x 3 seeds on IMDB (300 tokens) and SNLI (80 tokens),
# 20 epochs with selection by dev robust accuracy, then Genetic (60 x 40, LM constraint), PWWS and
# white-box ASCC on 1,000 seeded test examples; bf16 autocast for training. It is a sweep
# (configs/paper/study_{imdb,snli}.yaml): killed, it resumes; results/ gets the committed copy.
#
#   scripts/paper_gpu.sh [ENCODER] [TASK ...]        # default: bert-base-uncased imdb snli
#   SEEDS="[0]" scripts/paper_gpu.sh roberta-base imdb
#   DRY_RUN=/tmp/paper-dry scripts/paper_gpu.sh <encoder> imdb   # the whole chain at a tiny size, on CPU
#
# SNLI needs the full training split: from the Hub (stanfordnlp/snli) or a local snli/train.jsonl.gz.
# The dry run trains SNLI on part of snli/dev instead (the only SNLI training data offline).
# Plan for about 20 A100/H100-hours per task and encoder for training alone (the authors used several A100s).
set -euo pipefail
cd "$(dirname "$0")/.."
ENCODER=${1:-bert-base-uncased}
[ $# -gt 0 ] && shift
TASKS=${*:-imdb snli}
RIFTKIT=${RIFTKIT:-.venv/bin/riftkit}
SLUG=$(basename "$ENCODER")
for task in $TASKS; do
  args=("overrides.model.encoder=$ENCODER" "overrides.train.autocast=bf16"
        "output_dir=runs/paper-$task-$SLUG" "results_dir=results/paper-$task-$SLUG")
  [ -n "${SEEDS:-}" ] && args+=("seeds=$SEEDS")
  if [ -n "${DRY_RUN:-}" ]; then
    # Tiny and on CPU: no autocast (bf16 on CPU is slow), a few examples, 1 epoch, tiny searches.
    args+=("overrides.train.autocast=fp32" "overrides.data.max_train=32" "overrides.data.max_dev=16" "overrides.data.max_test=16"
           "overrides.train.epochs=1" "overrides.train.batch_size=6" "overrides.train.select_max_examples=4"
           "overrides.model.max_length=32" "overrides.train.forgetting_probe_size=4" "overrides.train.log_forgetting_every_steps=0"
           "overrides.objective.adv_steps=2" "evaluation.attack.n=3"
           "evaluation.attacks=[{attack: genetic, genetic: {population: 4, generations: 2}}, {attack: pwws}, {attack: ascc, ascc: {steps: 2}}]"
           "output_dir=$DRY_RUN/runs-$task" "results_dir=$DRY_RUN/results-$task")
    if [ "$task" = snli ]; then
      args+=("overrides.data.source=local" "overrides.data.train_split=dev" "overrides.data.dev_split=null" "overrides.data.dev_size=0.2")
    fi
  fi
  "$RIFTKIT" sweep "configs/paper/study_$task.yaml" "${args[@]}" --quiet
done
