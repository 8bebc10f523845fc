// quench/quant/export.h: writes a ModelOpt-layout quantized checkpoint from a BF16 one, streaming
// tensor by tensor from the mmap'd input (../shared/reference/nvfp4-modelopt-format.md §2, §3,
// §6, §7; checklist §11).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/quant_config.h"  // WeightFormat
#include "quant/scheme.h"     // QuantScheme
#include "quant/weight_quantizer.h"  // QuantDevice

namespace quench {

struct ActivationAmax;

/// Options of the export (CLI flags of `quench quantize`).
struct ExportOptions {
  QuantScheme scheme = QuantScheme::kNvfp4Mlp;
  std::vector<std::string> exclude;               ///< glob patterns (io/quant_config.h glob_match) of module names kept BF16
  bool kv_cache_fp8 = false;                      ///< `--kv-cache-dtype fp8`
  std::size_t max_shard_bytes = 5'000'000'000;    ///< data bytes per shard (transformers' default "5GB")
  QuantDevice device = QuantDevice::kAuto;        ///< `--device`: where weights are quantized (same bytes)
};

/// Per-Linear outcome.
struct LinearReport {
  std::string module;                 ///< HF module name
  WeightFormat format = WeightFormat::kBF16;
  int64_t out_features = 0, in_features = 0;
  float weight_amax = 0.0f;           ///< max |W| of this member
  float weight_global_scale = 0.0f;   ///< NVFP4 weight_scale_2 / FP8 weight_scale (shared in fused groups)
  std::optional<float> input_scale;
  double rel_l2 = 0.0;                ///< ||W - dequant(Q(W))||_2 / ||W||_2 (0 for BF16)
};

/// What export_quantized wrote.
struct ExportReport {
  std::string quant_algo;
  std::vector<LinearReport> linears;  ///< every decoder Linear, in checkpoint order
  std::vector<std::string> renamed;   ///< "old -> new" multimodal renames
  std::vector<std::string> copied_files;
  std::size_t tensor_bytes = 0;       ///< sum of tensor data bytes written
  std::size_t num_shards = 0;
  std::size_t num_tensors = 0;
  bool kv_scales_written = false;
  std::string device;                 ///< WeightQuantizer::description() of the device that quantized
};

/// Quantizes the checkpoint in `in_dir` into the existing empty directory `out_dir`: shards (+
/// index), config.json with `quantization_config`, hf_quant_config.json, auxiliary files.
/// `calib` (may be null) supplies input_scale (= group max activation amax / 2688 for NVFP4,
/// / 448 for FP8) and, with kv_cache_fp8, k_scale / v_scale (= amax / 448); without it NVFP4
/// schemes are written as W4A16_NVFP4 (no input_scale) and FP8 KV without scales (= 1.0).
/// Fused q/k/v and gate/up share weight_scale_2 / weight_scale and input_scale (§3.5).
/// Weights are quantized on `options.device` (weight_quantizer.h; CPU and CUDA write the same
/// bytes), one fused group at a time, streamed from the mmap'd input.
/// Throws UnsupportedError (input already quantized, NVFP4 input dim not a multiple of 16),
/// InvalidArgument (--exclude splitting a fused group, FP8 without calibration, --device cuda
/// without a device), FormatError / IoError from the reader and writer, CudaError on the GPU.
ExportReport export_quantized(const std::filesystem::path& in_dir, const std::filesystem::path& out_dir,
                              const ExportOptions& options, const ActivationAmax* calib);

}  // namespace quench
