// quench/backend/cpu/paged_kv_cache.cpp: paged KV pools and the per-sequence view (paged_kv_cache.h).
#include "backend/cpu/paged_kv_cache.h"

#include <cstring>

#include "core/error.h"
#include "core/numeric.h"

namespace quench {
namespace {

std::size_t elem_size_of(KvCacheDtype d) {
  switch (d) {
    case KvCacheDtype::kFP32: return 4;
    case KvCacheDtype::kBF16: return 2;
    case KvCacheDtype::kFP8E4M3: return 1;
  }
  return 4;
}

void encode(KvCacheDtype d, const float* src, int n, float scale, std::byte* dst) {
  switch (d) {
    case KvCacheDtype::kFP32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case KvCacheDtype::kBF16: {
      auto* o = reinterpret_cast<uint16_t*>(dst);
      for (int i = 0; i < n; ++i) o[i] = f32_to_bf16(src[i]);
      return;
    }
    case KvCacheDtype::kFP8E4M3: {
      auto* o = reinterpret_cast<uint8_t*>(dst);
      for (int i = 0; i < n; ++i) o[i] = f32_to_fp8e4m3(src[i] / scale, /*saturate=*/true);
      return;
    }
  }
}

void decode(KvCacheDtype d, const std::byte* src, int n, float scale, float* dst) {
  switch (d) {
    case KvCacheDtype::kFP32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case KvCacheDtype::kBF16: {
      const auto* s = reinterpret_cast<const uint16_t*>(src);
      for (int i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case KvCacheDtype::kFP8E4M3: {
      const auto* s = reinterpret_cast<const uint8_t*>(src);
      for (int i = 0; i < n; ++i) dst[i] = fp8e4m3_to_f32(s[i]) * scale;
      return;
    }
  }
}

}  // namespace

PagedKvPool::PagedKvPool(std::string group_name, std::vector<int> kv_dims, std::vector<float> k_scales,
                         std::vector<float> v_scales, int num_blocks, int block_size, KvCacheDtype dtype)
    : name_(std::move(group_name)),
      kv_dims_(std::move(kv_dims)),
      k_scales_(std::move(k_scales)),
      v_scales_(std::move(v_scales)),
      num_blocks_(num_blocks),
      block_size_(block_size),
      dtype_(dtype),
      elem_size_(elem_size_of(dtype)) {
  if (block_size < 1 || num_blocks < 0)
    throw InvalidArgument("KV cache pool '" + name_ + "': block_size " + std::to_string(block_size) +
                          " must be >= 1 and num_blocks " + std::to_string(num_blocks) + " >= 0");
  for (int d : kv_dims_) {
    layer_offset_.push_back(block_bytes_);
    block_bytes_ += 2 * size_t(block_size) * size_t(d) * elem_size_;
  }
  data_.resize(block_bytes_ * size_t(num_blocks));
}

void PagedKvPool::check_block(int block) const {
  if (block < 0 || block >= num_blocks_)
    throw InvalidArgument("KV cache pool '" + name_ + "': block id " + std::to_string(block) + " outside [0, " +
                          std::to_string(num_blocks_) + ")");
}

std::byte* PagedKvPool::slot_ptr(int g, int block, int slot, bool value) {
  return data_.data() + size_t(block) * block_bytes_ + layer_offset_[g] +
         (size_t(value) * block_size_ + size_t(slot)) * size_t(kv_dims_[g]) * elem_size_;
}

const std::byte* PagedKvPool::slot_ptr(int g, int block, int slot, bool value) const {
  return const_cast<PagedKvPool*>(this)->slot_ptr(g, block, slot, value);
}

void PagedKvPool::write(int g, int block, int slot, const float* k, const float* v) {
  check_block(block);
  encode(dtype_, k, kv_dims_[g], k_scales_[g], slot_ptr(g, block, slot, false));
  encode(dtype_, v, kv_dims_[g], v_scales_[g], slot_ptr(g, block, slot, true));
}

void PagedKvPool::read(int g, int block, int slot, float* k, float* v) const {
  check_block(block);
  decode(dtype_, slot_ptr(g, block, slot, false), kv_dims_[g], k_scales_[g], k);
  decode(dtype_, slot_ptr(g, block, slot, true), kv_dims_[g], v_scales_[g], v);
}

PagedSequenceKv::PagedSequenceKv(PagedKvPool* full, PagedKvPool* sliding, const std::vector<int>* group_of,
                                 const std::vector<int>* index_in_group, std::span<const int32_t> table_full,
                                 std::span<const int32_t> table_sliding)
    : pools_{full, sliding}, group_of_(group_of), index_in_group_(index_in_group), tables_{table_full, table_sliding} {}

int PagedSequenceKv::physical_block(int layer, int pos) const {
  const int g = (*group_of_)[layer];
  const PagedKvPool* pool = pools_[g];
  const size_t logical = size_t(pos / pool->block_size());
  const char* group = g == 0 ? "block_table_full" : "block_table_sliding";
  if (logical >= tables_[g].size())
    throw InvalidArgument(std::string(group) + " has " + std::to_string(tables_[g].size()) +
                          " blocks; position " + std::to_string(pos) + " needs logical block " +
                          std::to_string(logical));
  const int32_t b = tables_[g][logical];
  if (b < 0)
    throw InvalidArgument(std::string(group) + "[" + std::to_string(logical) + "] is " + std::to_string(b) +
                          " but position " + std::to_string(pos) + " (layer " + std::to_string(layer) +
                          ") is inside the attention window");
  return b;
}

void PagedSequenceKv::write(int layer, int pos0, int n, const float* k, const float* v) {
  PagedKvPool* pool = pools_[(*group_of_)[layer]];
  const int g = (*index_in_group_)[layer];
  const size_t dim = size_t(pool->kv_dim(g));
  for (int t = 0; t < n; ++t) {
    const int pos = pos0 + t;
    pool->write(g, physical_block(layer, pos), pos % pool->block_size(), k + t * dim, v + t * dim);
  }
}

void PagedSequenceKv::read(int layer, int pos0, int n, float* k, float* v) const {
  const PagedKvPool* pool = pools_[(*group_of_)[layer]];
  const int g = (*index_in_group_)[layer];
  const size_t dim = size_t(pool->kv_dim(g));
  for (int t = 0; t < n; ++t) {
    const int pos = pos0 + t;
    pool->read(g, physical_block(layer, pos), pos % pool->block_size(), k + t * dim, v + t * dim);
  }
}

}  // namespace quench
