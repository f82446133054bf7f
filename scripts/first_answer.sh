#!/usr/bin/env bash
# Time what a new user waits for: build the wheel, install it with plain pip into a fresh virtual environment
# outside the checkout (beside an application's own retriever.py and plugin.py), then the first and a second
# `spanqa ask` on the default collection. Run from the checkout after `make setup`; nothing else should run.
set -euo pipefail
SRC=$(pwd)
R=$(mktemp -d /tmp/spanqa-first-answer.XXXX)
mkdir -p "$R/app"
"$SRC/.venv/bin/python" -m pip wheel --no-deps --no-build-isolation -q -w "$R/dist" "$SRC" 2>/dev/null
ls -la "$R"/dist/*.whl
python3 -m venv "$R/venv"
seconds() { local t0; t0=$(date +%s.%N); "$@" > "$R/out.json" 2> "$R/err.log"; echo "$(date +%s.%N) - $t0" | bc; }
echo "install_s $(seconds sh -c "'$R/venv/bin/pip' install -q torch==2.13.0 && '$R/venv/bin/pip' install -q '$R'/dist/spanqa-*.whl")"
cd "$R/app"
echo 'raise RuntimeError("the application'"'"'s own retriever.py was imported")' > retriever.py
echo 'raise RuntimeError("the application'"'"'s own plugin.py was imported")' > plugin.py
export SPANQA_HOME="$R/home"
"$R/venv/bin/spanqa" --version
echo "first_answer_s $(seconds "$R/venv/bin/spanqa" ask "What does spanqa do when the documents do not answer a question?" --json)"
python3 -c "import json,sys; d=json.load(open('$R/out.json')); print(d['reply'])"
echo "second_answer_s $(seconds "$R/venv/bin/spanqa" ask "How many tokens is a passage at most?" --json)"
python3 -c "import json,sys; d=json.load(open('$R/out.json')); print(d['reply'])"
