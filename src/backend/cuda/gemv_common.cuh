// quench/backend/cuda/gemv_common.cuh: device helpers shared by the skinny GEMMs and the weight
// dequantization kernels: streaming loads, bit-exact E2M1 / E4M3 -> bf16 decoding in registers
// (no lookup table in memory) and the bf16 tensor-core MMA.
//
// Decoding follows the exponent-rebias trick of vLLM's Marlin kernels
// (csrc/quantization/marlin/dequant.h, `dequant<nv_bfloat162, kFE2M1f / kFE4M3fn>`): the code's
// exponent and mantissa bits are moved into the low bits of a bf16's exponent and the top of its
// mantissa, which gives the code's value times a fixed power of two (2^-126 for E2M1, 2^-120 for
// E4M3), subnormal codes included (they land on bf16 subnormals); a bf16 multiply then restores or
// rescales the value exactly (every product below is representable, so the multiply is exact).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace quench::cuda::gemv_detail {

/// 16 bytes of a stream read once (weights): read-only path, not kept in L1.
__device__ __forceinline__ uint4 ld_stream16(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}
/// 8 bytes of a stream read once.
__device__ __forceinline__ uint2 ld_stream8(const void* p) {
  uint2 v;
  asm("ld.global.nc.L1::no_allocate.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}
/// Asks the L2 to fetch [lo, hi) from DRAM (cp.async.bulk.prefetch, sm_90): no registers held, no
/// completion to wait for. Only whole 16-byte units inside the range are requested (the bulk
/// prefetch needs 16-byte alignment), so nothing outside [lo, hi) is touched.
__device__ __forceinline__ void prefetch_l2(const uint8_t* lo, const uint8_t* hi) {
  const uintptr_t a = (reinterpret_cast<uintptr_t>(lo) + 15) & ~uintptr_t{15};
  const uintptr_t b = reinterpret_cast<uintptr_t>(hi) & ~uintptr_t{15};
  if (b > a)
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(a), "r"(static_cast<uint32_t>(b - a))
                 : "memory");
}

/// 16 bytes read by many warps (activations): read-only path, cached in L1.
__device__ __forceinline__ uint4 ld_shared_input16(const void* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }

__device__ __forceinline__ uint32_t bf16x2_mul(uint32_t a, uint32_t b) {
  __nv_bfloat162 r = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
  return *reinterpret_cast<const uint32_t*>(&r);
}

/// bf16x2 bit patterns of powers of two used by the rebias.
constexpr uint32_t kBf16x2Pow2_120 = 0x7B807B80u;  // 2^120 in both halves

/// E2M1 pair decode: for a word q holding codes n0..n7 (n0 in the lowest nibble) and qr = q >> 8,
/// returns the bf16x2 (n_j, n_{j+4}) * 2^-126 (low half = n_j), j = 0..3: sign bit 3 of a code ->
/// bf16 bit 15, magnitude bits (exponent 2, mantissa 1) -> bf16 bits 8..6. The nibble pair is
/// isolated with one mask, copied to both target offsets with one integer multiply (the two
/// copies cannot overlap or carry) and trimmed with one mask: 2 ALU ops + 1 IMAD per pair (the
/// ALU pipe, 64 ops/clk/SM on Hopper, is what limits NVFP4 decoding).
template <int J>
__device__ __forceinline__ uint32_t e2m1_pair_raw(uint32_t q, uint32_t qr) {
  const uint32_t src = J < 2 ? q : qr;                          // nibble j at bits 0-3 or 4-7
  const uint32_t m = src & (J % 2 ? 0x00F000F0u : 0x000F000Fu);  // one nibble per half
  const uint32_t p = m * (J % 2 ? 0x0104u : 0x1040u);            // sign -> bit 15, magnitude -> 6..8
  return p & 0x81C081C0u;
}

/// Run-time multipliers of e2m1_pair_raw_rt, passed as kernel parameters: a multiply by a
/// compile-time 0x1040 (two bits set) is turned by ptxas into a shift and an add on the integer
/// pipe, which the E2M1 decode saturates; by an unknown value it stays one IMAD on the FMA pipe
/// (the same finding as mma_gemm.cu's fp4_pair). shr8 = 2^24: __umulhi(q, shr8) = q >> 8, also
/// on the FMA pipe.
struct E2m1Muls {
  uint32_t lo = 0x1040u, hi = 0x0104u, shr8 = 1u << 24;
};

/// e2m1_pair_raw<J> with the multiplies taken from `mul` (bit-identical for the default values):
/// per word 8 integer-pipe ops (the masks) + 4 IMAD + 1 IMAD.HI instead of 17 integer-pipe ops.
template <int J>
__device__ __forceinline__ uint32_t e2m1_pair_raw_rt(uint32_t q, uint32_t qr, const E2m1Muls& mul) {
  const uint32_t src = J < 2 ? q : qr;
  const uint32_t m = src & (J % 2 ? 0x00F000F0u : 0x000F000Fu);
  return (m * (J % 2 ? mul.hi : mul.lo)) & 0x81C081C0u;
}

/// E4M3 pair decode: for a word q holding codes b0..b3 (b0 lowest byte), returns the exact bf16x2
/// (b1, b3) when HIGH, (b0, b2) otherwise (low half first). NaN codes (0x7F/0xFF) are not
/// special-cased (they never occur in a checkpoint; they decode to +-480).
template <bool HIGH>
__device__ __forceinline__ uint32_t e4m3_pair(uint32_t q) {
  const uint32_t s = HIGH ? q : q << 8;
  const uint32_t raw = (s & 0x80008000u) | ((s & 0x7F007F00u) >> 4);  // value * 2^-120
  return bf16x2_mul(raw, kBf16x2Pow2_120);
}

/// fp32 value of one E4M3 byte (exact).
__device__ __forceinline__ float e4m3_to_f32(uint32_t byte) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(byte & 0xffu), __NV_E4M3);
  return __half2float(__half(h));
}

/// Both halves of a bf16x2 as fp32 (exact).
__device__ __forceinline__ float bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }
/// bf16x2 (lo, hi) rounded to nearest even from two floats.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 r = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&r);
}

/// D[16x8] += A[16x16] * B[16x8], bf16 operands, fp32 accumulate (PTX ISA, "mma.m16n8k16"
/// fragment layout: lane = 4 * group + tig; a0/a2 rows group / group + 8, k slots 2 tig, 2 tig + 1;
/// a1/a3 the same rows at k slots + 8; b0/b1 column group at the same k slots as a0 / a1;
/// d0,d1 row group, columns 2 tig, 2 tig + 1; d2,d3 row group + 8).
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                               uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/// PyTorch gelu(approximate="tanh"): 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))) — the same
/// expression as elementwise_kernels.cu, so fused and unfused paths agree.
__device__ __forceinline__ float gelu_tanh(float u) {
  constexpr float kAlpha = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * u * (1.0f + tanhf(kAlpha * (u + 0.044715f * u * u * u)));
}

}  // namespace quench::cuda::gemv_detail
