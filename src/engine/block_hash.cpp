// quench/engine/block_hash.cpp: xxHash64 chaining of full KV-cache blocks.
#include "engine/block_hash.h"

#include <cstring>
#include <vector>

#include <xxhash.h>

namespace quench {

uint64_t hash_block_tokens(uint64_t parent_hash, std::span<const int32_t> tokens) {
  // Serialise explicitly little-endian so keys do not depend on the host byte order.
  std::vector<unsigned char> buf(8 + 4 * tokens.size());
  for (int i = 0; i < 8; ++i) buf[static_cast<size_t>(i)] = static_cast<unsigned char>(parent_hash >> (8 * i));
  for (size_t t = 0; t < tokens.size(); ++t) {
    const uint32_t v = static_cast<uint32_t>(tokens[t]);
    for (int i = 0; i < 4; ++i) buf[8 + 4 * t + static_cast<size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
  }
  return XXH64(buf.data(), buf.size(), 0);
}

}  // namespace quench
