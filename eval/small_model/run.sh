#!/usr/bin/env bash
# Re-makes the committed capability reports of the small model (eval/small_model/*.json, TABLE.md):
# quantizes models/gemma4-tiny-it (BF16) to NVFP4 MLP-only, FP8 and mixed NVFP4-MLP + FP8-attention
# with `quench quantize`, serves each with `quench serve` (CPU) and runs `quench eval` on the
# held-out sets in tests/data/small_model/, then `quench eval compare` of each against BF16.
# Settings mirror SKILLS.md's measurement (MMLU zero-shot chat, 8 tokens; HumanEval completion,
# 64 tokens; IFEval chat, 256 tokens; greedy).
# Usage: eval/small_model/run.sh [QUENCH_BINARY]   (from the repository root)
set -euo pipefail
QUENCH=${1:-build/quench}
OUT=eval/small_model
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
DATA=tests/data/small_model
PORT=${PORT:-18790}

"$QUENCH" quantize models/gemma4-tiny-it "$TMP/nvfp4-mlp" --scheme nvfp4-mlp > "$TMP/q1.log"
"$QUENCH" quantize models/gemma4-tiny-it "$TMP/fp8" --scheme fp8 > "$TMP/q2.log"
"$QUENCH" quantize models/gemma4-tiny-it "$TMP/nvfp4-mlp-fp8-attn" --scheme nvfp4-mlp+fp8-attn > "$TMP/q3.log"

run_one() {  # name model_dir
  local name=$1 dir=$2
  "$QUENCH" serve "$dir" --host 127.0.0.1 --port "$PORT" --served-model-name "gemma4-tiny-it-$name" > "$TMP/serve-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
    sleep 0.2
  done
  "$QUENCH" eval --base-url "http://127.0.0.1:$PORT" --model "gemma4-tiny-it-$name" --tasks mmlu,humaneval,ifeval \
    --data mmlu=$DATA/mmlu --data humaneval=$DATA/humaneval.jsonl --data ifeval=$DATA/ifeval.jsonl \
    --task-max-tokens mmlu=8 --task-max-tokens humaneval=64 --task-max-tokens ifeval=256 \
    --humaneval-mode completion --no-progress --out "$OUT/$name.json"
  kill "$pid"
  wait "$pid" || true
}

run_one bf16 models/gemma4-tiny-it
run_one nvfp4-mlp "$TMP/nvfp4-mlp"
run_one fp8 "$TMP/fp8"
run_one nvfp4-mlp-fp8-attn "$TMP/nvfp4-mlp-fp8-attn"

{
  echo "# Small model capability table"
  echo
  echo "Made by \`eval/small_model/run.sh\` ($(date -u +%Y-%m-%d), quench $(git rev-parse --short HEAD))."
  echo "Held-out sets of tests/data/small_model; IFEval column = prompt-level strict accuracy."
  echo
  "$QUENCH" eval table $OUT/bf16.json $OUT/nvfp4-mlp.json $OUT/fp8.json $OUT/nvfp4-mlp-fp8-attn.json
  for n in nvfp4-mlp fp8 nvfp4-mlp-fp8-attn; do
    echo
    echo "## bf16 -> $n"
    echo
    "$QUENCH" eval compare $OUT/bf16.json $OUT/$n.json | sed -n '/^A = /,$p'
  done
} > $OUT/TABLE.md
cat $OUT/TABLE.md
