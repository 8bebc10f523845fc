#!/usr/bin/env bash
# Makes quench's GPU-host fixtures (transformers 5.17 + PyTorch, one H200) and leaves them as
# tarballs under $OUT, to be unpacked at the repository root:
#   golden.tar.gz -> tests/data/golden/{tiny-fp32,tiny-bf16,tiny-globalkeys}/  (make_golden_logits.py)
#   models.tar.gz.part-* (cat them) -> models/gemma4-tiny-it/                                    (train_small_model.py)
#   small_model.tar.gz -> tests/data/small_model/                               (train_small_model.py)
# plus the logs golden.log and train.log.
#
# Usage (repository root, on the GPU host): OUT=/some/dir scripts/gpu-fixtures.sh [all|golden|small] [train args...]
# The corpus (TinyStories subset + tiny Shakespeare) is read from $CORPUS (default .carry/corpus,
# a git-ignored copy of ../shared/corpus made before the device call). See tools/fixtures/README.md.
#
# Back on the development machine: scripts/gpu-fixtures.sh unpack DIR   (DIR = the call's files_at)
# extracts every tarball found in DIR at the repository root and lists what it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
[ $# -gt 0 ] && shift
if [ "$mode" = unpack ]; then
  dir=${1:?usage: scripts/gpu-fixtures.sh unpack DIR}
  [ -f "$dir/golden.tar.gz" ] && tar -xzf "$dir/golden.tar.gz" && du -sh tests/data/golden/*/
  if ls "$dir"/models.tar.gz.part-* >/dev/null 2>&1; then
    cat "$dir"/models.tar.gz.part-* | tar -xz && du -sh models/*/ && ls -l models/*/
  fi
  [ -f "$dir/small_model.tar.gz" ] && tar -xzf "$dir/small_model.tar.gz" && du -sh tests/data/small_model
  exit 0
fi
: "${OUT:?set OUT to the folder that receives the tarballs}"
CORPUS=${CORPUS:-.carry/corpus}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
work=$(mktemp -d)
rc=0
trap 'rm -rf "$work"' EXIT
python3 -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__, "cuda", torch.cuda.is_available())'

if [ "$mode" = all ] || [ "$mode" = golden ]; then
  python3 tools/fixtures/make_golden_logits.py --out "$work/golden/tests/data/golden" 2>&1 \
    | tee "$OUT/golden.log" || rc=$?
  [ -d "$work/golden" ] && tar -C "$work/golden" -czf "$OUT/golden.tar.gz" tests/data/golden
fi
if [ "$mode" = all ] || [ "$mode" = small ]; then
  python3 tools/fixtures/train_small_model.py --corpus "$CORPUS" \
    --model-out "$work/small/models/gemma4-tiny-it" --data-out "$work/small/tests/data/small_model" \
    "$@" 2>&1 | tee "$OUT/train.log" || rc=$?
  # Pack whatever was written, also after a failure. The bf16 model is ~28 MB: split it so that each
  # returned file stays under the 16 MiB limit of the device call.
  [ -d "$work/small/models" ] && tar -C "$work/small" -czf - models | split -b 15m - "$OUT/models.tar.gz.part-"
  [ -d "$work/small/tests" ] && tar -C "$work/small" -czf "$OUT/small_model.tar.gz" tests/data/small_model
fi
ls -l "$OUT"
exit $rc
