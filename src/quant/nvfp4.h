// quench/quant/nvfp4.h: NVFP4 weight quantization with NVIDIA ModelOpt's numerics, bit for bit.
//
// Formulas: ../shared/reference/nvfp4-modelopt-format.md §3 (ModelOpt
// `modelopt/torch/quantization/qtensor/nvfp4_tensor.py`, NVFP4QTensor, release 0.45+):
//   g          = amax_W / (6 * 448)                         (weight_scale_2, fp32)
//   s[r,b]     = fl32(amax_b / fl32(6 * g)); 0 -> 1.0; clamp [2^-9, 448]; E4M3 RNE  (weight_scale)
//   code[r,i]  = E2M1_RNE(fl32(w / fl32(float(s) * g)))    (ties to the even code, saturate at 6)
//   byte[r,j]  = code[r,2j] | code[r,2j+1] << 4              (low nibble first)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace quench {

inline constexpr float kE2M1Max = 6.0f;    ///< largest E2M1 magnitude
inline constexpr float kE4M3Max = 448.0f;  ///< largest finite E4M3FN value
inline constexpr int kNvfp4BlockSize = 16; ///< inputs per E4M3 block scale (ModelOpt group_size)

/// E2M1 nibble of x (sign in bit 3) with ModelOpt's rounding (§1.3): the branch-free form the
/// quantizer uses; equal to core's f32_to_e2m1 for every float.
uint8_t nvfp4_e2m1_code(float x);

/// max |v| over `values` (NaN is ignored; 0 for an empty span).
float abs_max(std::span<const float> values);

/// NVFP4 global scale (`weight_scale_2` or `input_scale`): fl32(amax / 2688) (§3.1, §5.1).
/// Exact fp32 division (the CPU path of ModelOpt; see §3.6 for the GPU's 1-ulp variant).
float nvfp4_global_scale(float amax);

/// E4M3 byte of the block scale for a block whose max |w| is `block_amax`, given global scale `g`
/// (§3.2 steps 2-5). When g == 0 (an all-zero tensor) the block scale is 1.0 (0x38).
uint8_t nvfp4_block_scale(float block_amax, float global_scale);

/// Quantizes `rows` x `cols` row-major fp32 weights with global scale `global_scale`.
/// Writes packed codes to `packed` (rows x cols/2 bytes) and E4M3 block scales to `scales`
/// (rows x cols/16 bytes). Rows are independent (OpenMP-parallel over rows).
/// Throws InvalidArgument if cols is not a multiple of 16 or a buffer size is wrong.
void nvfp4_quantize(std::span<const float> w, int64_t rows, int64_t cols, float global_scale,
                    std::span<uint8_t> packed, std::span<uint8_t> scales);

/// One quantized NVFP4 tensor as written to a checkpoint (§2): `weight` U8 [rows, cols/2],
/// `weight_scale` F8_E4M3 [rows, cols/16], `weight_scale_2` F32 scalar.
struct Nvfp4Tensor {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> packed;   ///< [rows, cols/2]
  std::vector<uint8_t> scales;   ///< [rows, cols/16] E4M3 bytes
  float global_scale = 0.0f;     ///< weight_scale_2
};

/// Convenience: quantizes `w` with the given global scale (use nvfp4_global_scale(group amax) so
/// fused q/k/v or gate/up share one scale, §3.5).
Nvfp4Tensor nvfp4_quantize(std::span<const float> w, int64_t rows, int64_t cols, float global_scale);

/// Bit-exact dequantization of one quantized row (§4): fl32(E2M1 * fl32(float(scale) * g)).
void nvfp4_dequantize_row(const uint8_t* packed_row, const uint8_t* scales_row, int64_t cols,
                          float global_scale, float* out);

}  // namespace quench
