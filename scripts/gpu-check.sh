#!/usr/bin/env bash
# The one GPU script (runs on the GPU host, one device call): GPU tests (kernels vs references,
# runner parity on the golden fixtures and on a 1.6B transformers-made checkpoint, the server tests
# on the CUDA runner), compute-sanitizer once, single-kernel benchmarks, the 12B-shaped benchmarks
# (synth BF16 / FP8, quantize NVFP4 MLP-only, bench-runner for each, FP8 KV) with transformers'
# generate as a baseline, and a short table last. Binaries come prebuilt from scripts/gpu-prepare.sh
# (.carry/gpu-bin.tgz: the host has no Debian dev packages and no internet).
#
# Usage (device call, repo root, carry [".carry"]):  OUT=$OUT scripts/gpu-check.sh [MODE...]
#   MODE: tests | kernels | bench | baseline | fp8 | ncu | all (= all five; does not fit one 10-minute call)
#   Environment (for shorter calls): TEST_FILTER (gtest filter for test_cuda), SKIP_MIDSIZE=1,
#   SKIP_SERVER_TESTS=1, SKIP_SANITIZER=1, KERNEL_FILTER (bench-kernels --filter regex),
#   BENCH_SET (which bench-runner runs: default "nvfp4:bf16:profile nvfp4:fp8_e4m3 bf16:bf16").
# Everything lands in $OUT/gpu-run.tgz (logs, JSON) + $OUT/summary.txt (the table).
# Timings seen on the H200 host: synth 12B BF16 to tmpfs 24 s; 12B NVFP4 quantize 48 s (CPU, 16
# cores); one bench-runner 30-60 s; test_cuda ~1 min; the midsize fixture ~1-2 min.
set -uo pipefail
cd "$(dirname "$0")/.."
modes=" ${*:-tests kernels bench} "; [[ $modes == *" all "* ]] && modes=" tests kernels bench baseline fp8 "
OUT=${OUT:-/tmp/gpu-out}
L=/tmp/gpu-logs; rm -rf $L; mkdir -p "$OUT" $L
tar -xJf .carry/gpu-bin.tgz -C /tmp
BIN=/tmp/gpu-bin
# Tests find fixtures through the source path compiled into them: make it point here.
src=$(cat $BIN/source_dir 2>/dev/null || echo "")
[ -n "$src" ] && [ "$src" != "$PWD" ] && [ ! -e "$src" ] && mkdir -p "$(dirname "$src")" && ln -sfn "$PWD" "$src"
cudalibs=$(dirname "$(find /usr/local -name 'libcublas.so.13*' 2>/dev/null | head -1)")
export LD_LIBRARY_PATH="$BIN/lib:$cudalibs:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
S=$OUT/summary.txt; : >$S   # written as it goes: a call cut by its time limit still returns it
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee -a $S
W=/tmp/quench-12b
[ "$(df --output=avail -B1G /dev/shm | tail -1)" -gt 60 ] && W=/dev/shm/quench-12b
mkdir -p $W
t() { local s=$(date +%s); "$@"; echo "  ($(( $(date +%s) - s )) s)"; }

if [[ $modes == *" tests "* ]]; then
  "$BIN/test_cuda" --gtest_filter="${TEST_FILTER:-*}" >$L/test_cuda.log 2>&1
  echo "test_cuda: $(grep -E '^\[  PASSED' $L/test_cuda.log | head -1) $(grep -cE '^\[  FAILED  \] [A-Za-z]' $L/test_cuda.log) failed; $(grep -E '^\[  SKIPPED' $L/test_cuda.log | head -1)" | tee -a $S
  grep -E '^\[  FAILED  \] [A-Za-z]' $L/test_cuda.log | head -20 | tee -a $S
  grep -E '^\[ parity \]' $L/test_cuda.log | sed 's/^\[ parity \] /  /' | tee -a $S
  M=/dev/shm/midsize2
  if [ -z "${SKIP_MIDSIZE:-}" ]; then
  [ -f $M/reference.safetensors ] || python3 tools/fixtures/make_midsize_fixture.py --out $M >$L/midsize_fixture.log 2>&1
  tail -3 $L/midsize_fixture.log 2>/dev/null | sed 's/^/  fixture: /' | tee -a $S
  QUENCH_MIDSIZE_DIR=$M "$BIN/test_cuda" --gtest_filter='*Midsize*' >$L/midsize_test.log 2>&1
  echo "midsize parity: $(grep -E '^\[  (PASSED|FAILED)  \]' $L/midsize_test.log | head -1)" | tee -a $S
  grep -E '^\[ (parity|rows) \]' $L/midsize_test.log | sed 's/^\[ parity \] /  /' | tee -a $S
  fi
  if [ -x "$BIN/test_server" ] && [ -z "${SKIP_SERVER_TESTS:-}" ]; then
    QUENCH_TEST_DEVICE=cuda QUENCH_BIN=$BIN/quench timeout 180 "$BIN/test_server" >$L/test_server_cuda.log 2>&1
    echo "test_server on cuda: $(grep -E '^\[  PASSED' $L/test_server_cuda.log | head -1) $(grep -cE '^\[  FAILED  \] [A-Za-z]' $L/test_server_cuda.log) failed; $(grep -E '^\[  SKIPPED' $L/test_server_cuda.log | head -1)" | tee -a $S
    grep -E '^\[  FAILED  \] [A-Za-z]' $L/test_server_cuda.log | head -10 | tee -a $S
  fi
  if command -v compute-sanitizer >/dev/null && [ -z "${SKIP_SANITIZER:-}" ]; then
    compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/test_cuda" \
      --gtest_filter='*Attention*:*Fixtures*tiny_bf16*:*Gemv*/1:*Mma*:*Sampl*:*Norm*' >$L/sanitizer.log 2>&1
    echo "compute-sanitizer memcheck: exit $? ($(grep -c 'ERROR SUMMARY: 0 errors' $L/sanitizer.log) clean, $(grep -cE 'ERROR SUMMARY: [1-9]' $L/sanitizer.log) with errors)" | tee -a $S
  fi
fi
if [[ $modes == *" kernels "* ]]; then
  "$BIN/quench" bench-kernels --filter "${KERNEL_FILTER:-.*}" --out $L/bench-kernels.json >$L/bench-kernels.log 2>&1
  echo "bench-kernels: exit $? ($(grep -c '%' $L/bench-kernels.log) cases; full table in bench-kernels.log)" | tee -a $S
fi
# bench_one CHECKPOINT KV [extra bench-runner flags]: one bench-runner run, its lines into the summary.
bench_one() {
  local ck=$1 kv=$2; shift 2
  [ -f $W/$ck/config.json ] || return
  timeout 240 "$BIN/quench" bench-runner $W/$ck --device cuda --kv-cache-dtype $kv --batch-sizes 1,16,64 --context 512 \
    --decode-steps 64 --prefill-len 2048 --ttft-len 512 --out $L/bench-$ck-$kv.json "$@" >$L/bench-$ck-$kv.log 2>&1
  { echo "-- $ck weights, $kv KV (exit $?)"; grep -E '^(prefill|time to first|decode batch)|weights .* resident' $L/bench-$ck-$kv.log | sed 's/^bench-runner: .*; weights/  weights/;s/^/  /'; } | tee -a $S
}
if [[ $modes == *" bench "* ]]; then
  [ -f $W/bf16/config.json ] || t "$BIN/quench" synth tests/data/io/gemma4-12b-config.json $W/bf16 --no-multimodal >$L/synth.log 2>&1
  rm -rf $W/nvfp4
  s=$(date +%s)
  "$BIN/quench" quantize $W/bf16 $W/nvfp4 --scheme nvfp4-mlp --calib-samples 0 --quality-samples 0 >$L/quantize.log 2>&1
  echo "quantize 12B nvfp4-mlp: exit $?, $(( $(date +%s) - s )) s wall; $(grep -E 'quantized on|peak RSS' $L/quantize.log | sed 's/^ *//' | tr '\n' ' ')" | tee -a $S
  du -sb $W/bf16 $W/nvfp4 2>/dev/null | awk '{printf "checkpoint %s: %.3f GB\n", $2, $1/1e9}' | tee -a $S
  for b in ${BENCH_SET:-nvfp4:bf16:profile nvfp4:fp8_e4m3 bf16:bf16}; do
    IFS=: read -r ck kv prof <<<"$b"
    if [ "$prof" = profile ]; then bench_one $ck $kv --profile --profile-steps 3; else bench_one $ck $kv; fi
  done
fi
if [[ $modes == *" baseline "* ]]; then
  [ -f $W/bf16/config.json ] || "$BIN/quench" synth tests/data/io/gemma4-12b-config.json $W/bf16 --no-multimodal >$L/synth.log 2>&1
  timeout 150 python3 tools/fixtures/hf_generate_baseline.py $W/bf16 --new-tokens 32 --out $L/hf-baseline.json >$L/hf-baseline.log 2>&1
  echo "transformers generate baseline: exit $?" | tee -a $S; grep -E '^\{"batch|prefill_2048|gpu_memory' $L/hf-baseline.log | tee -a $S
fi
if [[ $modes == *" fp8 "* ]]; then
  s=$(date +%s)
  [ -f $W/fp8/config.json ] || "$BIN/quench" synth tests/data/io/gemma4-12b-config.json $W/fp8 --no-multimodal --dtype fp8 >$L/synth-fp8.log 2>&1
  echo "synth 12B fp8 (calibrated on random ids): exit $?, $(( $(date +%s) - s )) s; $(du -sb $W/fp8 | awk '{printf "%.3f GB", $1/1e9}')" | tee -a $S
  bench_one fp8 bf16
fi
# ncu: one Nsight Compute capture per line of .carry/ncu-requests.txt
# ("<bench-kernels filter regex> | <kernel name regex> | <note> [| VAR=value ...]"): the first matching launch of
# `quench bench-kernels --filter F --iters 1`, full section set, printed as text.
if [[ $modes == *" ncu "* ]] && [ -f .carry/ncu-requests.txt ] && command -v ncu >/dev/null; then
  n=0
  while IFS='|' read -r f k note envs; do
    f=$(echo "$f" | sed 's/^ *//;s/ *$//'); k=$(echo "$k" | sed 's/^ *//;s/ *$//'); envs=$(echo "$envs" | sed 's/^ *//;s/ *$//')
    [ -z "$f" ] && continue; n=$((n + 1))
    { echo "# request $n: filter '$f' kernel '$k' ($note)"
      env ${envs:+"$envs"} timeout 75 ncu --kernel-name "regex:$k" --launch-count 1 --set full --print-details all \
        "$BIN/quench" bench-kernels --filter "$f" --iters 1 2>&1 | grep -vE '^==PROF==|^bench-kernels|^group '; } >$L/ncu-$n.txt
    echo "ncu $n ($f | $k): $(grep -cE 'Duration|Stall' $L/ncu-$n.txt) lines of interest" | tee -a $S
  done <.carry/ncu-requests.txt
fi
tar -C $L -czf "$OUT/gpu-run.tgz" .
echo "================ summary ================"; cat $S
