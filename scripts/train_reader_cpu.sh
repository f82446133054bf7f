#!/usr/bin/env bash
# Issue 16, part 2 on a CPU: continue training the shipped reader (shared normalisation, 2 hard negatives per
# question, a quarter unanswerable groups, 2 epochs of SQuAD v1.1, new_wiki's first 1,000 questions for selection)
# in the background at idle priority, so that it only takes CPU nobody else wants. Checkpoints every 10 minutes;
# run it again (in any later session) and it resumes where it stopped. About 6.7 h of an otherwise idle 2-core
# machine with AVX-512 BF16. Ship runs/reader-v3 only if it beats the shipped reader on new_wiki, reddit and amazon:
#   .venv/bin/python -m bench.reader --model runs/reader-v3 spanqa/models/reader --no-speed
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1
mkdir -p runs
RESUME=""
[ -f runs/reader-v3/checkpoint/state.pt ] && RESUME="--resume"
nohup chrt --idle 0 nice -n 19 .venv/bin/spanqa train-reader --train "$DATA/squad-v1.1/train-v1.1.json" \
  --dev "$DATA/squadshifts/new_wiki_v1.0.json" --out runs/reader-v3 --base spanqa/models/reader \
  --objective shared_norm --negatives-per-question 2 --negative-ratio 0.25 --max-seq-len 384 --stride 128 \
  --batch-size 32 --lr 3e-5 --epochs 2 --eval-minutes 120 --checkpoint-minutes 10 $RESUME \
  >> runs/reader-v3.log 2>&1 &
echo "training in the background (pid $!); progress: tail -f runs/reader-v3.log"
