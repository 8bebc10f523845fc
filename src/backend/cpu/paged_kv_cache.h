// quench/backend/cpu/paged_kv_cache.h: the CPU backend's paged KV-cache memory: one pool of
// blocks per KV-cache group (full-attention layers / sliding-window layers), and the view of one
// sequence through its two block tables (see backend/backend.h for the engine/backend split).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/sequence_kv.h"

namespace quench {

/// One group's pool: `num_blocks` blocks of `block_size` token slots. Block layout: for each
/// layer of the group (in group order) K [block_size, kv_dim] then V [block_size, kv_dim], in the
/// pool dtype. FP8 E4M3 stores sat_e4m3(x / scale) with the layer's k/v scale and reads
/// e4m3 · scale (nvfp4-modelopt-format.md §7.2); BF16 rounds to nearest even.
class PagedKvPool {
 public:
  /// kv_dims / k_scales / v_scales: one entry per layer of the group.
  PagedKvPool(std::string group_name, std::vector<int> kv_dims, std::vector<float> k_scales,
              std::vector<float> v_scales, int num_blocks, int block_size, KvCacheDtype dtype);

  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  KvCacheDtype dtype() const { return dtype_; }
  std::size_t bytes() const { return data_.size(); }
  /// Values per token of group layer g (num_kv_heads · head_dim).
  int kv_dim(int g) const { return kv_dims_[g]; }
  /// Number of layers in the group (0: the model has no layers of this kind).
  int kv_dim_count() const { return static_cast<int>(kv_dims_.size()); }
  /// Stores one token's k, v ([kv_dim] fp32) of group layer `g` into (block, slot).
  /// Throws InvalidArgument when block is outside [0, num_blocks).
  void write(int g, int block, int slot, const float* k, const float* v);
  /// Reads one token's k, v into fp32.
  void read(int g, int block, int slot, float* k, float* v) const;

 private:
  std::byte* slot_ptr(int g, int block, int slot, bool value);
  const std::byte* slot_ptr(int g, int block, int slot, bool value) const;
  void check_block(int block) const;

  std::string name_;
  std::vector<int> kv_dims_;
  std::vector<float> k_scales_, v_scales_;
  std::vector<std::size_t> layer_offset_;  ///< byte offset of group layer g inside a block
  int num_blocks_ = 0, block_size_ = 0;
  KvCacheDtype dtype_ = KvCacheDtype::kBF16;
  std::size_t elem_size_ = 2, block_bytes_ = 0;
  std::vector<std::byte> data_;
};

/// One sequence seen through its block tables. `group_of[layer]` is 0 (full pool) or 1 (sliding
/// pool) and `index_in_group[layer]` the layer's position inside that pool. Logical block
/// b = position / block_size maps to physical block table[b]; reading or writing through a -1
/// entry or past the table's end throws InvalidArgument.
class PagedSequenceKv : public SequenceKv {
 public:
  PagedSequenceKv(PagedKvPool* full, PagedKvPool* sliding, const std::vector<int>* group_of,
                  const std::vector<int>* index_in_group, std::span<const int32_t> table_full,
                  std::span<const int32_t> table_sliding);
  void write(int layer, int pos0, int n, const float* k, const float* v) override;
  void read(int layer, int pos0, int n, float* k, float* v) const override;

 private:
  int physical_block(int layer, int pos) const;
  PagedKvPool* pools_[2];
  const std::vector<int>* group_of_;
  const std::vector<int>* index_in_group_;
  std::span<const int32_t> tables_[2];
};

}  // namespace quench
