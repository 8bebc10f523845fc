// quench/engine/sequence.cpp: token bookkeeping of a Sequence (block hashes, penalty counts).
#include "engine/sequence.h"

#include <fmt/format.h>

#include "core/error.h"
#include "engine/block_hash.h"

namespace quench {

std::optional<FinishReason> finish_reason_of(SequenceStatus s) {
  switch (s) {
    case SequenceStatus::kFinishedStopped: return FinishReason::kStop;
    case SequenceStatus::kFinishedLength: return FinishReason::kLength;
    case SequenceStatus::kFinishedAborted: return FinishReason::kAbort;
    default: return std::nullopt;
  }
}

Sequence::Sequence(int64_t seq_id, int index, std::vector<int32_t> prompt_ids, int block_size)
    : seq_id_(seq_id), index_(index), block_size_(block_size),
      num_prompt_tokens_(static_cast<int>(prompt_ids.size())), token_ids_(std::move(prompt_ids)) {
  if (block_size_ < 1) throw InvalidArgument(fmt::format("Sequence: block_size must be >= 1, got {}", block_size_));
  seen_ids_.insert(token_ids_.begin(), token_ids_.end());
  update_hashes();
}

void Sequence::update_hashes() {
  const size_t full = token_ids_.size() / static_cast<size_t>(block_size_);
  while (block_hashes_.size() < full) {
    const size_t b = block_hashes_.size();
    const uint64_t parent = b == 0 ? kRootBlockHash : block_hashes_[b - 1];
    block_hashes_.push_back(hash_block_tokens(
        parent, std::span<const int32_t>(token_ids_.data() + b * static_cast<size_t>(block_size_),
                                         static_cast<size_t>(block_size_))));
  }
}

void Sequence::append_token(int32_t id) {
  token_ids_.push_back(id);
  ++output_counts_[id];
  seen_ids_.insert(id);
  update_hashes();
}

int Sequence::output_count(int32_t id) const {
  auto it = output_counts_.find(id);
  return it == output_counts_.end() ? 0 : it->second;
}

}  // namespace quench
