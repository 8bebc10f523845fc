// tests/engine/fake_runner.h: a deterministic ModelRunner test double whose logits depend on the
// tokens it READS BACK from its paged KV cache, so any block-table mistake (a wrong block, a block
// shared or reused while still needed, a sliding block released too early) changes the output.
//
// Next-token logits for the query at position p are a pure function of the token history:
//   f(tokens[0..p]) = pseudo-random scores from a hash of (all tokens 0..p, and separately the
//   last `window` tokens), see reference_logits(). The runner stores each fed token in its block
//   slot (full and sliding pools) and rebuilds the history from the slots, so the oracle
//   reference_logits(actual token list) is independent of the engine's bookkeeping.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/model_config.h"

namespace quench::test {

inline uint64_t fake_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// The oracle: logits after `history` (positions 0..p), independent of any KV cache.
inline std::vector<float> reference_logits(std::span<const int32_t> history, int vocab, int window) {
  uint64_t h_all = 17, h_win = 29;
  for (int32_t t : history) h_all = fake_mix(h_all ^ static_cast<uint64_t>(t));
  const size_t from = window > 0 && history.size() > static_cast<size_t>(window) ? history.size() - window : 0;
  for (size_t i = from; i < history.size(); ++i) h_win = fake_mix(h_win ^ static_cast<uint64_t>(history[i]));
  std::vector<float> out(static_cast<size_t>(vocab));
  for (int v = 0; v < vocab; ++v)
    out[static_cast<size_t>(v)] = static_cast<float>(fake_mix(h_all ^ (h_win << 1) ^ static_cast<uint64_t>(v) * 0x9e37ull) % 10007) / 1000.0f;
  return out;
}

/// Greedy continuation by the oracle (argmax, lowest id on ties), stopping at max_tokens or at
/// one of `eos` ids (included).
/// Ids below `min_id` are never chosen (the engine test suppresses them).
inline std::vector<int32_t> reference_greedy(std::vector<int32_t> tokens, int max_tokens, int vocab, int window,
                                             const std::vector<int32_t>& eos = {}, int min_id = 0) {
  std::vector<int32_t> out;
  for (int i = 0; i < max_tokens; ++i) {
    auto l = reference_logits(tokens, vocab, window);
    int32_t best = min_id;
    for (int v = min_id + 1; v < vocab; ++v) if (l[static_cast<size_t>(v)] > l[static_cast<size_t>(best)]) best = v;
    out.push_back(best);
    tokens.push_back(best);
    if (std::find(eos.begin(), eos.end(), best) != eos.end()) break;
  }
  return out;
}

class FakeRunner : public ModelRunner {
 public:
  FakeRunner(int vocab, int block_size, int num_blocks_full, int num_blocks_sliding, int window, int max_pos = 4096)
      : vocab_(vocab), window_(window) {
    cfg_.model_type = "fake";
    cfg_.vocab_size = vocab;
    cfg_.max_position_embeddings = max_pos;
    spec_.block_size = block_size;
    spec_.num_blocks_full = num_blocks_full;
    spec_.num_blocks_sliding = num_blocks_sliding;
    spec_.sliding_window = num_blocks_sliding > 0 ? window : 0;
    full_.assign(static_cast<size_t>(num_blocks_full * block_size), -1);
    sliding_.assign(static_cast<size_t>(num_blocks_sliding * block_size), -1);
  }
  const ModelConfig& config() const override { return cfg_; }
  KvCacheSpec kv_cache_spec() const override { return spec_; }
  std::string name() const override { return "fake"; }

  void execute(std::span<const SeqStep> batch, std::span<float> logits) override {
    ++num_steps;
    size_t row = 0;
    int tokens_this_step = 0;
    for (const SeqStep& s : batch) {
      tokens_this_step += static_cast<int>(s.tokens.size());
      max_seqs_per_step = std::max<int>(max_seqs_per_step, static_cast<int>(batch.size()));
      for (size_t j = 0; j < s.tokens.size(); ++j) {
        const int pos = s.start_pos + static_cast<int>(j);
        slot(full_, s.block_table_full, pos, "full") = s.tokens[j];
        if (spec_.num_blocks_sliding > 0) slot(sliding_, s.block_table_sliding, pos, "sliding") = s.tokens[j];
      }
      if (!s.want_logits) continue;
      const int p = s.start_pos + static_cast<int>(s.tokens.size()) - 1;
      std::vector<int32_t> hist;
      for (int q = 0; q <= p; ++q) hist.push_back(slot(full_, s.block_table_full, q, "full"));
      if (spec_.num_blocks_sliding > 0) {
        for (int q = std::max(0, p - window_ + 1); q <= p; ++q)
          if (slot(sliding_, s.block_table_sliding, q, "sliding") != hist[static_cast<size_t>(q)])
            throw std::runtime_error("fake runner: sliding KV differs from full KV at position " + std::to_string(q));
      }
      auto l = reference_logits(hist, vocab_, window_);
      if (auto it = transitions.find(hist.back()); it != transitions.end()) {  // scripted text tests
        std::fill(l.begin(), l.end(), 0.0f);
        l[static_cast<size_t>(it->second)] = 10.0f;
      }
      std::copy(l.begin(), l.end(), logits.begin() + static_cast<std::ptrdiff_t>(row * static_cast<size_t>(vocab_)));
      ++row;
    }
    if (row * static_cast<size_t>(vocab_) != logits.size()) throw std::runtime_error("fake runner: logits size mismatch");
    max_tokens_per_step = std::max(max_tokens_per_step, tokens_this_step);
    if (fail_next) {
      fail_next = false;
      throw std::runtime_error("injected failure");
    }
  }

  /// When the last token is a key, the next token is forced to its value (one-hot logits).
  std::map<int32_t, int32_t> transitions;
  int num_steps = 0;
  int max_tokens_per_step = 0;
  int max_seqs_per_step = 0;
  bool fail_next = false;

 private:
  int32_t& slot(std::vector<int32_t>& pool, std::span<const int32_t> table, int pos, const char* group) {
    const size_t b = static_cast<size_t>(pos / spec_.block_size);
    if (b >= table.size()) throw std::runtime_error(std::string("fake runner: ") + group + " table too short for position " + std::to_string(pos));
    const int32_t id = table[b];
    if (id < 0 || id >= static_cast<int32_t>(pool.size() / static_cast<size_t>(spec_.block_size)))
      throw std::runtime_error(std::string("fake runner: ") + group + " block for position " + std::to_string(pos) + " is " + std::to_string(id));
    return pool[static_cast<size_t>(id * spec_.block_size + pos % spec_.block_size)];
  }
  int vocab_, window_;
  ModelConfig cfg_;
  KvCacheSpec spec_;
  std::vector<int32_t> full_, sliding_;
};

}  // namespace quench::test
