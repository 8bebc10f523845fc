// quench/engine/block_hash.h: the prefix-cache key of a full KV-cache block.
//
// A block's hash covers its tokens and, through the parent hash, every token before it, so two
// blocks share a key only when their whole prefixes are equal (vLLM's hash_block_tokens). The
// function is xxHash64 (seed 0) of the parent hash (8 bytes, little-endian) followed by the
// block's token ids (int32, little-endian); the first block's parent is kRootBlockHash.
#pragma once

#include <cstdint>
#include <span>

namespace quench {

/// Parent hash of a sequence's first block.
inline constexpr uint64_t kRootBlockHash = 0x9e3779b97f4a7c15ull;

/// xxHash64 of (parent_hash, tokens); `tokens` is one full block (block_size ids).
uint64_t hash_block_tokens(uint64_t parent_hash, std::span<const int32_t> tokens);

}  // namespace quench
