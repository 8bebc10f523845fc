#!/usr/bin/env bash
# GPU host, one device call: `quench quantize` on --device cuda and --device cpu must write the same
# files, and every byte must equal the torch re-implementation of ModelOpt's formulas
# (tools/fixtures/modelopt_reference_torch.py, independent of quench). Also times both devices.
#   tiny: models/gemma4-tiny-it in all four schemes (nvfp4-mlp weight-only; nvfp4, fp8 and
#         nvfp4-mlp+fp8-attn calibrated on the built-in text with FP8 KV scales) and
#         tests/data/golden/tiny-bf16 (transformers-made) nvfp4 weight-only.   ~1-2 min
#   12b:  the 12B-shaped random checkpoint (quench synth; reused from scripts/gpu-check.sh's
#         /dev/shm/quench-12b/bf16 when present) nvfp4-mlp weight-only on cuda and cpu + the torch
#         check of the cuda output.                                 ~3-5 min (+ ~30 s synth if absent)
# Binaries come prebuilt from scripts/gpu-prepare.sh (.carry/gpu-bin.tgz).
# One output at a time exists (12 GB for the 12B): tmpfs when it has 14 GB free, else /tmp.
# Usage (device call, repo root, carry [".carry"]): OUT=... scripts/gpu-quant-check.sh [all|tiny|12b]
# (default all: tiny first; the summary is written as it goes, so a timed-out call still returns it)
# Output (2 files, the device tool returns at most 8): $OUT/quant-check.txt (summary) and
# $OUT/quant-check-logs.tgz (per-run quench logs, torch logs and torch JSON reports).
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
OUT=${OUT:-/tmp/gpu-quant-out}
mkdir -p "$OUT"
tar -xJf .carry/gpu-bin.tgz -C /tmp
BIN=/tmp/gpu-bin
cudalibs=$(dirname "$(find /usr/local -name 'libcublas.so.13*' 2>/dev/null | head -1)")
export LD_LIBRARY_PATH="$BIN/lib:$cudalibs:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
avail_gb() { df --output=avail -B1G "$1" | tail -1 | tr -d ' '; }
W=/tmp/quench-qcheck  # the tiny outputs; the 12B ones go where they fit (below)
L=/tmp/quench-qcheck-logs/logs
rm -rf "$L"
mkdir -p "$W" "$L"
S="$OUT/quant-check.txt"
: >"$S"
fail=0
say() { echo "$*" | tee -a "$S"; }

# run NAME IN_DIR [quantize args...]: quantize on cuda (torch-check that output), then on cpu; the
# two outputs must have the same files (compared by md5, so only one 12 GB output exists at a time).
run() {
  local name=$1 in=$2
  shift 2
  for dev in cuda cpu; do
    local o="$W/$name-$dev"
    rm -rf "$o"
    local t0=$(date +%s.%N)
    if ! "$BIN/quench" quantize "$in" "$o" --device "$dev" --quality-samples 0 "$@" >"$L/$name-$dev.log" 2>&1; then
      say "FAIL $name: quench quantize --device $dev exited non-zero: $(tail -1 "$L/$name-$dev.log")"
      fail=1
      rm -rf "$o"
      return
    fi
    say "$name --device $dev: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s wall;" \
        "$(grep -E 'quantized on|time .* s|GB in' "$L/$name-$dev.log" | sed 's/^ *//' | tr '\n' ' ')"
    if [ $dev = cuda ]; then
      if python3 tools/fixtures/modelopt_reference_torch.py "$in" "$o" --json "$L/$name-torch.json" \
          >"$L/$name-torch.log" 2>&1; then
        say "  torch reference: $(grep -E 'Linears checked|bytes checked|ALL BYTES' "$L/$name-torch.log" | sed 's/^ *//' | tr '\n' ' ')"
      else
        say "FAIL $name: torch reference: $(tail -12 "$L/$name-torch.log" | tr '\n' ' ')"
        fail=1
      fi
    fi
    # quantization_report.json holds the device name and timings: different by design.
    (cd "$o" && ls | grep -vx quantization_report.json | xargs -P 8 -n 1 md5sum | sort -k2) >"$L/$name-$dev.md5"
    rm -rf "$o"
  done
  local n=$(wc -l <"$L/$name-cpu.md5")
  if cmp -s "$L/$name-cpu.md5" "$L/$name-cuda.md5"; then
    say "  cpu == cuda: $n files byte-identical (md5)"
  else
    say "FAIL $name: cpu and cuda outputs differ: $(diff "$L/$name-cpu.md5" "$L/$name-cuda.md5" | grep '^[<>]' | awk '{print $3}' | sort -u | tr '\n' ' ')"
    fail=1
  fi
}

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$S"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' | tee -a "$S"

if [[ $mode == tiny || $mode == all ]]; then
  M=models/gemma4-tiny-it
  run tiny-nvfp4-mlp-w4a16 $M --scheme nvfp4-mlp --calib-samples 0
  run tiny-nvfp4 $M --scheme nvfp4 --kv-cache-dtype fp8
  run tiny-fp8 $M --scheme fp8 --kv-cache-dtype fp8
  run tiny-mixed $M --scheme nvfp4-mlp+fp8-attn --kv-cache-dtype fp8
  run golden-tiny-bf16-nvfp4 tests/data/golden/tiny-bf16 --scheme nvfp4 --calib-samples 0
fi
if [[ $mode == 12b || $mode == all ]]; then
  # The BF16 input where scripts/gpu-check.sh keeps it (made here if absent); outputs where 2 x 12 GB fit.
  B=/dev/shm/quench-12b/bf16
  [ -f $B/config.json ] || B=/tmp/quench-12b/bf16
  if [ ! -f $B/config.json ]; then
    B=/tmp/quench-12b/bf16
    [ "$(avail_gb /dev/shm)" -gt 50 ] && B=/dev/shm/quench-12b/bf16
    mkdir -p "$(dirname $B)"
    s=$(date +%s)
    "$BIN/quench" synth tests/data/io/gemma4-12b-config.json $B --no-multimodal >"$L/synth.log" 2>&1
    say "synth 12B bf16 into $B: $(( $(date +%s) - s )) s"
  fi
  W=/tmp/quench-qcheck
  [ "$(avail_gb /dev/shm)" -gt 14 ] && W=/dev/shm/quench-qcheck
  mkdir -p "$W"
  say "12B outputs in $W (free: $(avail_gb "$W") GB)"
  run g12b-nvfp4-mlp $B --scheme nvfp4-mlp --calib-samples 0
fi
say "quant-check: $([ $fail -eq 0 ] && echo PASSED || echo FAILED)"
tar -C "$(dirname "$L")" -czf "$OUT/quant-check-logs.tgz" logs
exit $fail
