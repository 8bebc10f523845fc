// quench/backend/cuda/gemv_dequant.cu: NVFP4 / FP8 weights expanded to bf16 for the prefill GEMMs
// (a per-layer scratch, never the model). Pure streams: each thread reads 16 bytes of codes (two
// NVFP4 blocks or 16 FP8 codes) and writes 32 or 64 bytes with 16-byte stores; values round
// exactly as the CPU dequantizer (io/dequant.cpp) before the final bf16 rounding.
#include <string>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/gemv_common.cuh"
#include "backend/cuda/kernels.h"

namespace quench::cuda {
namespace {

using namespace gemv_detail;

constexpr int kThreads = 256;

/// One NVFP4 block (8 code bytes as two words, scale already folded into t = fl32(scale * g)) ->
/// 16 bf16 = two uint4. Each value is fl32(e2m1 * t) rounded to bf16.
__device__ __forceinline__ void nvfp4_block_to_bf16(uint32_t q0, uint32_t q1, float t, uint4* out) {
  const uint32_t q[2] = {q0, q1};
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t qr = q[h] >> 8;
    const uint32_t d0 = e2m1_pair_raw<0>(q[h], qr), d1 = e2m1_pair_raw<1>(q[h], qr);
    const uint32_t d2 = e2m1_pair_raw<2>(q[h], qr), d3 = e2m1_pair_raw<3>(q[h], qr);
    // raw = e2m1 * 2^-126 (exact in fp32, subnormal for 0.5); * 2^126 restores it exactly.
    auto v = [t](float raw) { return raw * 0x1p126f * t; };
    out[h] = make_uint4(pack_bf16x2(v(bf16_lo(d0)), v(bf16_lo(d1))), pack_bf16x2(v(bf16_lo(d2)), v(bf16_lo(d3))),
                        pack_bf16x2(v(bf16_hi(d0)), v(bf16_hi(d1))), pack_bf16x2(v(bf16_hi(d2)), v(bf16_hi(d3))));
  }
}

/// Items (pairs of NVFP4 blocks, or 16 FP8 codes) per thread, all loads issued before the first
/// store. H200: 1 item: NVFP4 43%, FP8 79% of bandwidth (run 1); 4 items: 43% and 57% (run 2).
constexpr int kItems = 1;

/// Thread t expands block pairs t + j * T (T = total threads, j < kItems): blocks 2i and 2i+1
/// of pair i (the last pair of an odd count holds only block 2i).
__global__ void __launch_bounds__(kThreads) dequant_nvfp4_kernel(const uint8_t* __restrict__ Wq,
                                                                 const uint8_t* __restrict__ scales, float g,
                                                                 size_t blocks, bf16* __restrict__ out) {
  const size_t T = static_cast<size_t>(gridDim.x) * kThreads;
  const size_t t = blockIdx.x * size_t(kThreads) + threadIdx.x;
  const size_t pairs = (blocks + 1) / 2;
  uint4 q[kItems];
  uint32_t s[kItems];
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const size_t i = t + j * T, b = 2 * i;
    q[j] = make_uint4(0, 0, 0, 0);
    s[j] = 0;
    if (i >= pairs) continue;
    if (b + 1 < blocks) {
      q[j] = ld_stream16(Wq + b * 8);
      s[j] = __ldg(reinterpret_cast<const unsigned short*>(scales) + i);
    } else {
      const uint2 h = ld_stream8(Wq + b * 8);
      q[j].x = h.x;
      q[j].y = h.y;
      s[j] = __ldg(scales + b);
    }
  }
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const size_t i = t + j * T, b = 2 * i;
    if (i >= pairs) continue;
    uint4* o = reinterpret_cast<uint4*>(out + b * 16);
    nvfp4_block_to_bf16(q[j].x, q[j].y, e4m3_to_f32(s[j]) * g, o);
    if (b + 1 < blocks) nvfp4_block_to_bf16(q[j].z, q[j].w, e4m3_to_f32(s[j] >> 8) * g, o + 2);
  }
}

/// Thread t expands the 16-code chunks t + j * T (T = total threads, j < kItems).
__global__ void __launch_bounds__(kThreads) dequant_fp8_kernel(const uint8_t* __restrict__ W, float scale,
                                                               size_t chunks, bf16* __restrict__ out) {
  const size_t T = static_cast<size_t>(gridDim.x) * kThreads;
  const size_t t = blockIdx.x * size_t(kThreads) + threadIdx.x;
  uint4 q[kItems];
#pragma unroll
  for (int j = 0; j < kItems; ++j) q[j] = t + j * T < chunks ? ld_stream16(W + (t + j * T) * 16) : make_uint4(0, 0, 0, 0);
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const size_t i = t + j * T;
    if (i >= chunks) continue;
    const uint32_t w[4] = {q[j].x, q[j].y, q[j].z, q[j].w};
    uint32_t r[8];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const __half2_raw hr =
            __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w[k] >> (16 * h)), __NV_E4M3);
        const float2 f = __half22float2(__half2(hr));
        r[2 * k + h] = pack_bf16x2(f.x * scale, f.y * scale);
      }
    }
    uint4* o = reinterpret_cast<uint4*>(out + i * 16);
    o[0] = make_uint4(r[0], r[1], r[2], r[3]);
    o[1] = make_uint4(r[4], r[5], r[6], r[7]);
  }
}

unsigned grid_for(size_t threads) { return static_cast<unsigned>((threads + kThreads - 1) / kThreads); }

void check_dequant(const char* what, int N, int K) {
  if (N < 0 || K < 0 || K % 16)
    throw InvalidArgument(std::string(what) + ": weight [" + std::to_string(N) + ", " + std::to_string(K) +
                          "]; expected K a multiple of 16");
}

}  // namespace

void dequant_nvfp4_to_bf16(const uint8_t* Wq, const uint8_t* scales, float global_scale, int N, int K, bf16* out,
                           cudaStream_t stream) {
  check_dequant("dequant_nvfp4_to_bf16", N, K);
  const size_t blocks = static_cast<size_t>(N) * (K / 16);
  if (blocks == 0) return;
  const size_t pairs = (blocks + 1) / 2;
  dequant_nvfp4_kernel<<<grid_for((pairs + kItems - 1) / kItems), kThreads, 0, stream>>>(Wq, scales, global_scale,
                                                                                         blocks, out);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void dequant_fp8_to_bf16(const uint8_t* W, float scale, int N, int K, bf16* out, cudaStream_t stream) {
  check_dequant("dequant_fp8_to_bf16", N, K);
  const size_t chunks = static_cast<size_t>(N) * K / 16;
  if (chunks == 0) return;
  dequant_fp8_kernel<<<grid_for((chunks + kItems - 1) / kItems), kThreads, 0, stream>>>(W, scale, chunks, out);
  QUENCH_CUDA_LAUNCH_CHECK();
}

}  // namespace quench::cuda
