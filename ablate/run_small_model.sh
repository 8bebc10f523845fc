#!/usr/bin/env bash
# Re-makes ablate/small-model-report.md: `quench ablate` on the small trained model (weather
# questions vs other questions, measurement split tests/data/ablate/), then `quench quantize
# --scheme nvfp4-mlp` of the ablated checkpoint, then `quench serve` + `quench eval` (MMLU zero-shot,
# IFEval) on the original, the ablated and the ablated+NVFP4 models, and `quench eval compare`.
# Usage: ablate/run_small_model.sh [QUENCH_BINARY] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
QUENCH=${1:-build/quench}
WORK=${2:-$(mktemp -d /tmp/quench-ablate-report.XXXXXX)}
MODEL=models/gemma4-tiny-it
DATA=tests/data/small_model
mkdir -p "$WORK"
# Re-uses the checkpoints of an earlier run in WORK_DIR when both are complete (the ablation is
# deterministic); delete them to redo the edit.
if [ -f "$WORK/ablated/ablation.json" ] && [ -f "$WORK/ablated-nvfp4/hf_quant_config.json" ]; then
  echo "re-using $WORK/ablated and $WORK/ablated-nvfp4"
else
rm -rf "$WORK/ablated" "$WORK/ablated-nvfp4"
"$QUENCH" ablate "$MODEL" "$WORK/ablated" \
  --a tests/data/ablate/weather_train.txt --b tests/data/ablate/other_train.txt \
  --heldout-a "$DATA/weather.txt" --heldout-b "$DATA/other.txt" \
  --k 2 --projected --biprojected --edit-layers 1-11 \
  --marker "can't help with questions about the weather" --max-kl 0.1 | tee "$WORK/ablate.out"
"$QUENCH" quantize "$WORK/ablated" "$WORK/ablated-nvfp4" --scheme nvfp4-mlp | tee "$WORK/quantize.out"
fi

port_free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
evaluate() {  # name model_dir
  local port; port=$(port_free)
  "$QUENCH" serve "$2" --host 127.0.0.1 --port "$port" --served-model-name "$1" > "$WORK/$1-serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.2; done
  "$QUENCH" eval --base-url "http://127.0.0.1:$port" --model "$1" --tasks mmlu,ifeval \
    --data mmlu="$DATA/mmlu" --data ifeval="$DATA/ifeval.jsonl" \
    --task-max-tokens mmlu=8 --task-max-tokens ifeval=256 --concurrency 8 --no-progress --out "$WORK/$1.json" \
    > "$WORK/$1-eval.out" 2>&1
  kill "$pid"; wait "$pid" || true
}
evaluate original "$MODEL"
evaluate ablated "$WORK/ablated"
evaluate ablated-nvfp4 "$WORK/ablated-nvfp4"
"$QUENCH" eval compare "$WORK/original.json" "$WORK/ablated.json" | tee "$WORK/compare-ablated.out"
"$QUENCH" eval compare "$WORK/original.json" "$WORK/ablated-nvfp4.json" | tee "$WORK/compare-ablated-nvfp4.out"
cp "$WORK/ablated/ablation.json" ablate/small-model-ablation.json
echo "work dir: $WORK"
