#!/usr/bin/env bash
# scripts/demo.sh: the README's main job. Starts `quench serve` on the embedded model on a free
# loopback port, waits for /health, asks chat questions with curl (an arithmetic one, and a weather
# one the embedded model is trained to decline), prints the answers, and stops
# the server (always, via trap). Exits non-zero on any failure; every wait is bounded.
#
#   bash scripts/demo.sh [QUENCH_BINARY] [MODEL_DIR]     (defaults: build/quench models/gemma4-tiny-it)
set -euo pipefail

cd "$(dirname "$0")/.."
QUENCH="${1:-build/quench}"
MODEL="${2:-models/gemma4-tiny-it}"
if [[ -n "${QUESTION:-}" ]]; then QUESTIONS=("$QUESTION"); else
  QUESTIONS=("What is 23 + 45?" "What will the weather be like in Paris tomorrow?"); fi

[[ -x "$QUENCH" ]] || { echo "demo: $QUENCH is not an executable (build first: make build)" >&2; exit 1; }
[[ -f "$MODEL/config.json" ]] || { echo "demo: $MODEL has no config.json (not a model directory)" >&2; exit 1; }
command -v curl >/dev/null || { echo "demo: curl is required" >&2; exit 1; }

log="$(mktemp -t quench-demo.XXXXXX)"
"$QUENCH" serve "$MODEL" --host 127.0.0.1 --port 0 --served-model-name demo >"$log" 2>&1 &
pid=$!
cleanup() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

# The server prints "quench serve: listening on http://127.0.0.1:PORT ..." once bound.
url=""
for _ in $(seq 1 600); do
  kill -0 "$pid" 2>/dev/null || { echo "demo: quench serve exited during startup:" >&2; cat "$log" >&2; exit 1; }
  url="$(sed -n 's/^quench serve: listening on \(http:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$log" | head -n1)"
  [[ -n "$url" ]] && break
  sleep 0.1
done
[[ -n "$url" ]] || { echo "demo: server did not start within 60 s:" >&2; cat "$log" >&2; exit 1; }

for _ in $(seq 1 100); do
  curl -fsS --max-time 2 "$url/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS --max-time 2 "$url/health" >/dev/null || { echo "demo: $url/health is not answering" >&2; exit 1; }

ask() {
  local question="$1" body reply answer
  body="$(printf '{"model": "demo", "messages": [{"role": "user", "content": "%s"}], "max_tokens": 64, "temperature": 0}' "$question")"
  reply="$(curl -sS --max-time 120 -H 'Content-Type: application/json' -d "$body" "$url/v1/chat/completions")" \
    || { echo "demo: chat request failed" >&2; return 1; }
  # Print the answer (python3 or node, whichever is there, parses the JSON).
  local extract='import json,sys
r=json.load(sys.stdin)
if "error" in r: sys.exit("demo: server error: " + json.dumps(r["error"]))
print(r["choices"][0]["message"]["content"])'
  if command -v python3 >/dev/null; then
    answer="$(printf '%s' "$reply" | python3 -c "$extract")"
  else
    answer="$(printf '%s' "$reply" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);if(r.error){console.error("demo: server error: "+JSON.stringify(r.error));process.exit(1)}console.log(r.choices[0].message.content)})')"
  fi
  [[ -n "$answer" ]] || { echo "demo: empty answer; reply was: $reply" >&2; return 1; }
  echo "Q: $question"
  echo "A: $answer"
}
for q in "${QUESTIONS[@]}"; do ask "$q"; done
