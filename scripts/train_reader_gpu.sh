#!/usr/bin/env bash
# Train two shared-normalisation readers side by side on one GPU (continuing from the shipped reader), keep
# the one with the better dev F1 (the first 1,000 questions of SQuADShifts new_wiki), and write it to $OUT as
# fp16 safetensors in 15 MB parts. Meant for a lent GPU machine whose python3 has torch + transformers +
# scikit-learn: the source tree is laid out as the `spanqa` package under /tmp/site, no install needed.
# Data: DATA_DIR holds train-v1.1.json.gz and new_wiki_v1.0.json.gz (gzip keeps the upload small).
set -euo pipefail
DATA_DIR=$(realpath "${DATA_DIR:-.gpu}")
OUT=$(realpath -m "${OUT:-runs/gpu}")
SRC=$(pwd)
HOURS=${HOURS:-0.08}
EXTRA=${EXTRA:-}  # e.g. "--limit 40 --dev-limit 20" for a dry run on a CPU
mkdir -p /tmp/site/spanqa "$OUT"
cp -r spanqa/. /tmp/site/spanqa/ && cp -r plugin /tmp/site/spanqa/plugin && cp -r retriever /tmp/site/spanqa/retriever
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
cd /tmp  # the checkout's own spanqa/ folder must not shadow the laid-out package
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
train() {  # name lr epochs
  timeout -s TERM "${RUN_SECONDS:-500}" python3 -m spanqa.plugin.doors.cli train-reader --train "$DATA_DIR/train-v1.1.json.gz" \
    --dev "$DATA_DIR/new_wiki_v1.0.json.gz" --out "/tmp/runs/$1" --base "${BASE:-$SRC/spanqa/models/reader}" \
    --objective shared_norm --negatives-per-question 3 --negative-ratio 0.33 --max-seq-len 384 --stride 128 \
    --batch-size 128 --lr "$2" --epochs "$3" --max-hours "$HOURS" --eval-minutes 1.5 --checkpoint-minutes 60 $EXTRA \
    > "$OUT/$1.log" 2>&1
}
train a "${LR_A:-5e-5}" "${EPOCHS_A:-2}" & train b "${LR_B:-1e-4}" "${EPOCHS_B:-3}" & wait || true
python3 - "$OUT" <<'PY'
import json, shutil, subprocess, sys
from pathlib import Path
out = Path(sys.argv[1])
logs = {n: json.loads(Path(f"/tmp/runs/{n}/training_log.json").read_text()) for n in "ab"
        if Path(f"/tmp/runs/{n}/training_log.json").is_file()}
for n, log in logs.items():
    print(n, "best dev F1", log["best_f1"], "windows", log["examples_seen"], "curve", log["curve"])
best = max(logs, key=lambda n: logs[n]["best_f1"])
print("chosen", best)
run = Path(f"/tmp/runs/{best}")
for name in ("config.json", "calibration.json", "training_log.json"):
    if (run / name).is_file():
        shutil.copy(run / name, out / name)
subprocess.run(["split", "-b", "15M", str(run / "model.safetensors"), str(out / "model.safetensors.part-")], check=True)
PY
ls -la "$OUT"
