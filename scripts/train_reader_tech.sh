#!/usr/bin/env bash
# Issue 16, part 3: adapt the shipped reader to technical documentation. Writes a training set of templated
# questions over installed packages' own documentation (spanqa.plugin.lab.tech_synth; the technical benchmark's
# packages are left out) mixed with as many SQuAD questions, and continues training the shipped reader on it
# (shared normalisation, hard negatives from the same package) within a time budget. Checkpoint selection reads
# the technical training questions (bench/techdocs/train.tsv, other packages than the development set) and
# new_wiki's first 500 selection questions, so that prose is watched as closely as code.
# Measured once (2026-11-29): worse than the shipped reader on new_wiki and on technical questions
# (numbers in spanqa/plugin/lab/tech_synth.py); not shipped.
# Compare before shipping:  .venv/bin/python -m bench.reader --model runs/reader-tech spanqa/models/reader --no-speed
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
HOURS=${HOURS:-1.0}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1
mkdir -p runs/techmix
[ -f runs/techmix/train.json ] || .venv/bin/python -m spanqa.plugin.lab.tech_synth --out runs/techmix/train.json \
  --squad "$DATA/squad-v1.1/train-v1.1.json" --squad-questions "${SQUAD_QUESTIONS:-13000}"
[ -f bench/out/techtrain.json ] || .venv/bin/python -m bench.techdocs.build --questions bench/techdocs/train.tsv --out bench/out/techtrain.json
.venv/bin/python - "$DATA" <<'PY'
import json, sys
from pathlib import Path
from spanqa.plugin.lab.tech_mix import answerable_head
data = answerable_head(Path("bench/out/techtrain.json"), 10**6) + answerable_head(
    Path(sys.argv[1]) / "squadshifts/new_wiki_v1.0.json", 500)
json.dump({"version": "selection", "data": data}, open("runs/techmix/dev.json", "w"))
PY
RESUME=""
[ -f runs/reader-tech/checkpoint/state.pt ] && RESUME="--resume"
nohup .venv/bin/spanqa train-reader --train runs/techmix/train.json --dev runs/techmix/dev.json \
  --out runs/reader-tech --base spanqa/models/reader --objective shared_norm --negatives-per-question 2 \
  --negative-ratio 0.25 --max-seq-len 384 --stride 128 --batch-size 32 --lr 3e-5 --epochs 1 --max-hours "$HOURS" \
  --eval-minutes 20 --checkpoint-minutes 10 --dev-limit 2000 $RESUME >> runs/reader-tech.log 2>&1 &
echo "training in the background (pid $!); progress: tail -f runs/reader-tech.log"
