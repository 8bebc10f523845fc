// quench/backend/cuda/gemv_formats.cuh: per-weight-format pieces of the skinny GEMM
// (gemv_kernels.cu): how a lane loads its slice of one weight row and turns it into bf16 MMA
// A-fragments, and how the matching activation slice is arranged into B-fragments.
//
// Vocabulary. A *piece* is the 16 bytes (8 for NVFP4 rows that are not 16-byte aligned) of one
// weight row a lane loads at once; it spans kPieceK consecutive k. A piece is split into *units*
// of 8 consecutive k; one unit of rows g and g + 8 plus 8 activations of column g feed two
// m16n8k16 MMAs. Within an MMA the k order is free as long as A and B use the same one, so each
// format pairs codes in the order its decode produces them and permutes the activations to match.
#pragma once

#include "backend/cuda/gemv_common.cuh"

namespace quench::cuda::gemv_detail {

/// bf16 weights: a piece is one unit (8 bf16); no decoding, no permutation.
struct FmtBf16 {
  static constexpr int kPieceK = 8, kPieceBytes = 16, kUnits = 1;
  static constexpr bool kWideRegs = false;  ///< needs > 64 registers (see gemv_kernel_2blocks)
  static constexpr int kScaleBytes = 0;     ///< block-scale bytes per piece
  static constexpr float kOutFactor = 1.0f;
  struct Piece {
    uint4 w;
  };
  using Ready = Piece;
  static __host__ __device__ size_t row_bytes(int K) { return static_cast<size_t>(K) * 2; }
  static __device__ __forceinline__ Piece load(const uint8_t* wrow, const uint8_t*, int p) {
    return {ld_stream16(wrow + static_cast<size_t>(p) * kPieceBytes)};
  }
  static __device__ __forceinline__ Piece zero() { return {make_uint4(0, 0, 0, 0)}; }
  /// A piece from 16 bytes already loaded (gemv_ring.cu's shared-memory stage).
  static __device__ __forceinline__ Piece make(const uint4& w, uint32_t) { return {w}; }
  static __device__ __forceinline__ Ready prepare(const Piece& p) { return p; }
  template <int U>
  static __device__ __forceinline__ void unit(const Ready& r, uint32_t (&a)[4]) {
    a[0] = r.w.x; a[1] = r.w.y; a[2] = r.w.z; a[3] = r.w.w;
  }
  /// unit() for kernels that pass E2M1 run-time multipliers (unused here).
  template <int U>
  static __device__ __forceinline__ void unit_rt(const Ready& r, uint32_t (&a)[4], const E2m1Muls&) {
    unit<U>(r, a);
  }
  template <int U>
  static __device__ __forceinline__ void xunit(const uint4& X, uint32_t (&b)[4]) {
    b[0] = X.x; b[1] = X.y; b[2] = X.z; b[3] = X.w;
  }
};

/// FP8 E4M3 weights (per-tensor scale applied to the fp32 result): a piece is 16 codes = 2 units.
/// Unit codes k0..k7 are paired (k0,k2), (k1,k3), (k4,k6), (k5,k7).
struct FmtFp8 {
  static constexpr int kPieceK = 16, kPieceBytes = 16, kUnits = 2;
  static constexpr bool kWideRegs = false;
  static constexpr int kScaleBytes = 0;
  static constexpr float kOutFactor = 1.0f;
  struct Piece {
    uint4 w;
  };
  using Ready = Piece;
  static __host__ __device__ size_t row_bytes(int K) { return static_cast<size_t>(K); }
  static __device__ __forceinline__ Piece load(const uint8_t* wrow, const uint8_t*, int p) {
    return {ld_stream16(wrow + static_cast<size_t>(p) * kPieceBytes)};
  }
  static __device__ __forceinline__ Piece zero() { return {make_uint4(0, 0, 0, 0)}; }
  /// A piece from 16 bytes already loaded (gemv_ring.cu's shared-memory stage).
  static __device__ __forceinline__ Piece make(const uint4& w, uint32_t) { return {w}; }
  static __device__ __forceinline__ Ready prepare(const Piece& p) { return p; }
  template <int U>
  static __device__ __forceinline__ void unit(const Ready& r, uint32_t (&a)[4]) {
    const uint32_t q0 = U == 0 ? r.w.x : r.w.z, q1 = U == 0 ? r.w.y : r.w.w;
    a[0] = e4m3_pair<false>(q0);  // (k0, k2)
    a[1] = e4m3_pair<true>(q0);   // (k1, k3)
    a[2] = e4m3_pair<false>(q1);  // (k4, k6)
    a[3] = e4m3_pair<true>(q1);   // (k5, k7)
  }
  /// unit() for kernels that pass E2M1 run-time multipliers (unused here).
  template <int U>
  static __device__ __forceinline__ void unit_rt(const Ready& r, uint32_t (&a)[4], const E2m1Muls&) {
    unit<U>(r, a);
  }
  template <int U>
  static __device__ __forceinline__ void xunit(const uint4& X, uint32_t (&b)[4]) {
    b[0] = __byte_perm(X.x, X.y, 0x5410);  // (x0, x2)
    b[1] = __byte_perm(X.x, X.y, 0x7632);  // (x1, x3)
    b[2] = __byte_perm(X.z, X.w, 0x5410);  // (x4, x6)
    b[3] = __byte_perm(X.z, X.w, 0x7632);  // (x5, x7)
  }
};

/// NVFP4 weights: packed E2M1 (low nibble = even k) with one E4M3 scale per 16 k. A is
/// e2m1 * scale * 2^-7 in bf16 — exact, since the product has at most 6 significant bits and lies
/// in [2^-17, 2^5]; the fp32 global scale and the 2^7 are applied to the fp32 result
/// (kOutFactor). kBytes = 16: a piece is 32 codes (2 scale blocks, 4 units); kBytes = 8 (rows not
/// 16-byte aligned, K % 32 != 0): 16 codes (1 block, 2 units). Unit codes n0..n7 are paired
/// (n0,n4), (n1,n5), (n2,n6), (n3,n7).
template <int kBytes>
struct FmtNvfp4 {
  static constexpr int kPieceK = 2 * kBytes, kPieceBytes = kBytes, kUnits = kBytes / 4;
  static constexpr bool kWideRegs = true;
  static constexpr int kScaleBytes = kBytes / 8;
  static constexpr float kOutFactor = 128.0f;
  struct Piece {
    uint32_t w[kBytes / 4];
    uint32_t s;  ///< the piece's scale bytes (1 or 2) in the low bits
  };
  struct Ready {
    uint32_t w[kBytes / 4];
    uint32_t m[kBytes / 8];  ///< per block: bf16x2 of scale * 2^119
  };
  static __host__ __device__ size_t row_bytes(int K) { return static_cast<size_t>(K) / 2; }
  static __device__ __forceinline__ Piece load(const uint8_t* wrow, const uint8_t* srow, int p) {
    Piece r;
    if constexpr (kBytes == 16) {
      const uint4 v = ld_stream16(wrow + static_cast<size_t>(p) * 16);
      r.w[0] = v.x; r.w[1] = v.y; r.w[2] = v.z; r.w[3] = v.w;
      r.s = __ldg(reinterpret_cast<const unsigned short*>(srow) + p);
    } else {
      const uint2 v = ld_stream8(wrow + static_cast<size_t>(p) * 8);
      r.w[0] = v.x; r.w[1] = v.y;
      r.s = __ldg(srow + p);
    }
    return r;
  }
  /// A piece from its 16 bytes and its 2 scale bytes (low bits of `s`) already loaded
  /// (gemv_ring.cu's shared-memory stage; kBytes == 16 only).
  static __device__ __forceinline__ Piece make(const uint4& w, uint32_t s) {
    static_assert(kBytes == 16, "the ring kernel takes 16-byte NVFP4 pieces");
    Piece r;
    r.w[0] = w.x; r.w[1] = w.y; r.w[2] = w.z; r.w[3] = w.w;
    r.s = s;
    return r;
  }
  static __device__ __forceinline__ Piece zero() {
    Piece r;
#pragma unroll
    for (int i = 0; i < kBytes / 4; ++i) r.w[i] = 0;
    r.s = 0;
    return r;
  }
  static __device__ __forceinline__ Ready prepare(const Piece& p) {
    Ready r;
#pragma unroll
    for (int i = 0; i < kBytes / 4; ++i) r.w[i] = p.w[i];
#pragma unroll
    for (int b = 0; b < kBytes / 8; ++b) {
      const float s = e4m3_to_f32(p.s >> (8 * b)) * 0x1p119f;  // <= 448 * 2^119 < bf16 max
      r.m[b] = pack_bf16x2(s, s);                              // exact: 4 significant bits
    }
    return r;
  }
  template <int U>
  static __device__ __forceinline__ void unit(const Ready& r, uint32_t (&a)[4]) {
    const uint32_t q = r.w[U], qr = q >> 8, m = r.m[U / 2];
    a[0] = bf16x2_mul(e2m1_pair_raw<0>(q, qr), m);  // (n0, n4)
    a[1] = bf16x2_mul(e2m1_pair_raw<1>(q, qr), m);  // (n1, n5)
    a[2] = bf16x2_mul(e2m1_pair_raw<2>(q, qr), m);  // (n2, n6)
    a[3] = bf16x2_mul(e2m1_pair_raw<3>(q, qr), m);  // (n3, n7)
  }
  /// unit() with the E2M1 spreads as IMADs by run-time multipliers (e2m1_pair_raw_rt):
  /// bit-identical, fewer integer-pipe instructions.
  template <int U>
  static __device__ __forceinline__ void unit_rt(const Ready& r, uint32_t (&a)[4], const E2m1Muls& mul) {
    const uint32_t q = r.w[U], qr = __umulhi(q, mul.shr8), m = r.m[U / 2];
    a[0] = bf16x2_mul(e2m1_pair_raw_rt<0>(q, qr, mul), m);  // (n0, n4)
    a[1] = bf16x2_mul(e2m1_pair_raw_rt<1>(q, qr, mul), m);  // (n1, n5)
    a[2] = bf16x2_mul(e2m1_pair_raw_rt<2>(q, qr, mul), m);  // (n2, n6)
    a[3] = bf16x2_mul(e2m1_pair_raw_rt<3>(q, qr, mul), m);  // (n3, n7)
  }
  template <int U>
  static __device__ __forceinline__ void xunit(const uint4& X, uint32_t (&b)[4]) {
    b[0] = __byte_perm(X.x, X.z, 0x5410);  // (x0, x4)
    b[1] = __byte_perm(X.x, X.z, 0x7632);  // (x1, x5)
    b[2] = __byte_perm(X.y, X.w, 0x5410);  // (x2, x6)
    b[3] = __byte_perm(X.y, X.w, 0x7632);  // (x3, x7)
  }
};

}  // namespace quench::cuda::gemv_detail
