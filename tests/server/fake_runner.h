// tests/server/fake_runner.h: a deterministic ModelRunner test double for the HTTP layer.
//
// It keeps the *token ids* of every position in a real paged store (the engine's block tables
// decide where each position lives), and its next-token distribution is a function of all tokens
// visible to the query, read back through the block tables. So a wrong block table, a mixed-up
// batch slot or a bad prefix-cache hit changes the output, as it would with a real model; and
// outputs are reproducible for the concurrency tests (greedy alone == greedy under batching).
//
// Distribution (over the vocabulary V of make_test_tokenizer_json()): logits are -20 for special
// and byte tokens, 0 for word tokens, +10 for the target token t = text_tokens[h % |text|] where
// h = FNV-1a of the visible ids, +8 and +7 for two runners-up. Exceptions that exercise the
// server: after the byte token <0xE4> come <0xB8> then <0xAD> (the 3 bytes of U+4E2D, so a
// character spans three tokens); when h % 23 == 0 the target is <eos> (id 1). When the prompt
// holds <|think|> (thinking on), the reply is scripted: `<|channel>thought\n the answer<channel|>
// sixty eight<eos>`, so the thought-channel split can be checked through HTTP.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/model_config.h"

namespace quench::test {

/// Ids of the test vocabulary (make_test_tokenizer_json).
struct TestVocab {
  static constexpr int32_t kPad = 0, kEos = 1, kBos = 2, kUnk = 3, kTurnOpen = 4, kTurnClose = 5,
                           kChannelOpen = 6, kChannelClose = 7, kThink = 8;
  static constexpr int32_t kByte0 = 9;  ///< <0x00>; <0xXX> = kByte0 + XX
  static constexpr int32_t kFirstWord = kByte0 + 256;
};

/// tokenizer.json text of a small byte-fallback BPE vocabulary with Gemma 4's chat special tokens.
std::string make_test_tokenizer_json();
/// generation_config.json text: eos [1, 5] (<eos>, <turn|>), bos 2, pad 0.
std::string make_test_generation_config_json();

class FakeRunner : public ModelRunner {
 public:
  /// vocab_size: the tokenizer's; step_delay: sleep per execute() (keeps streams alive long
  /// enough for disconnect tests).
  FakeRunner(int vocab_size, int num_blocks, int block_size, int max_position_embeddings,
             std::chrono::microseconds step_delay = std::chrono::microseconds(0));

  const ModelConfig& config() const override { return config_; }
  KvCacheSpec kv_cache_spec() const override;
  std::string name() const override { return "fake"; }
  void execute(std::span<const SeqStep> batch, std::span<float> logits) override;

  /// The greedy next token after `visible` ids (what the fake model predicts); for test oracles.
  static int32_t greedy_next(const std::vector<int32_t>& visible, int vocab_size);

 private:
  ModelConfig config_;
  int num_blocks_, block_size_;
  std::chrono::microseconds delay_;
  std::vector<int32_t> store_;  ///< [num_blocks * block_size] token ids, -1 = never written
};

}  // namespace quench::test
