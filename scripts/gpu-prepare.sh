#!/usr/bin/env bash
# Builds the GPU binaries HERE (nvcc 13.0, sm_90a + PTX) and packs them with the few shared
# libraries the GPU host's image lacks into .carry/gpu-bin.tgz (git-ignored, compressed so the
# working tree + carry stays under the device tool's 64 MiB), which a device call names in `carry`. The GPU host has no Debian dev packages and no internet, so we ship binaries
# rather than build there; its own CUDA 13 runtime, cuBLAS and libstdc++ are used.
# Usage: scripts/gpu-prepare.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build-gpu}
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$B" --target quench test_cuda test_server -j "$(nproc)"
D=.carry/gpu-bin
rm -rf "$D" && mkdir -p "$D/lib"
cp "$B/quench" "$B/test_cuda" "$B/test_server" "$D/"
pwd >"$D/source_dir"  # QUENCH_SOURCE_DIR compiled into the tests
strip --strip-all "$D/quench" "$D/test_cuda" "$D/test_server"
for bin in "$D/quench" "$D/test_cuda" "$D/test_server"; do
  ldd "$bin" | awk '/=> \//{print $3}' | grep -E 'libfmt|libspdlog|libcpp-httplib|libxxhash|libgomp|libssl|libcrypto' |
    while read -r lib; do cp -Ln "$lib" "$D/lib/" 2>/dev/null || true; done
done
# xz: the fat binaries' PTX and SASS compress ~25% better than with gzip (the carry limit is tight).
# NO_SERVER_TESTS=1 leaves test_server out (calls that skip the server tests).
[ -n "${NO_SERVER_TESTS:-}" ] && rm -f "$D/test_server"
tar -C .carry -cf - gpu-bin | xz -T2 -6 >.carry/gpu-bin.tgz && rm -rf "$D"
# Built elsewhere (a clean worktree of HEAD)? Put the carry where the device call picks it up.
[ -n "${CARRY_TO:-}" ] && mkdir -p "$CARRY_TO" && cp .carry/gpu-bin.tgz "$CARRY_TO/"
du -sh .carry/gpu-bin.tgz
