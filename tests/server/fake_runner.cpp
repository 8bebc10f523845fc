// tests/server/fake_runner.cpp: the deterministic test model and its tokenizer files.
#include "server/fake_runner.h"

#include <cstdio>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace quench::test {
namespace {

/// Word tokens of the test vocabulary, in id order from TestVocab::kFirstWord.
std::vector<std::string> word_tokens() {
  std::vector<std::string> w = {"\xE2\x96\x81"};  // "▁" (space)
  for (int c = 0x21; c <= 0x7e; ++c) w.emplace_back(1, static_cast<char>(c));
  for (const char* s : {"\xE2\x96\x81" "the", "\xE2\x96\x81" "answer", "\xE2\x96\x81" "is", "\xE2\x96\x81" "hello",
                        "\xE2\x96\x81" "world", "\xE2\x96\x81" "sixty", "\xE2\x96\x81" "eight", "ing", "ed"})
    w.emplace_back(s);
  return w;
}

uint64_t fnv1a(const std::vector<int32_t>& ids) {
  uint64_t h = 1469598103934665603ULL;
  for (int32_t id : ids) {
    for (int b = 0; b < 4; ++b) {
      h ^= static_cast<uint8_t>(static_cast<uint32_t>(id) >> (8 * b));
      h *= 1099511628211ULL;
    }
  }
  return h;
}

/// Id of a word token of the test vocabulary.
int32_t word_id(const std::string& w) {
  auto words = word_tokens();
  for (size_t i = 0; i < words.size(); ++i)
    if (words[i] == w) return TestVocab::kFirstWord + static_cast<int32_t>(i);
  return TestVocab::kUnk;
}

/// Thinking mode (the prompt holds <|think|>): after "<|turn>model\n" the model writes
/// `<|channel>thought\n the answer<channel|> sixty eight<eos>`; returns the scripted token or -1.
int32_t thinking_script(const std::vector<int32_t>& visible) {
  bool thinking = false;
  size_t last_turn = 0;
  for (size_t i = 0; i < visible.size(); ++i) {
    if (visible[i] == TestVocab::kThink) thinking = true;
    if (visible[i] == TestVocab::kTurnOpen) last_turn = i;
  }
  if (!thinking) return -1;
  const size_t header = 1 + 6;  // <|turn> m o d e l \n
  if (visible.size() < last_turn + header) return -1;
  size_t g = visible.size() - last_turn - header;
  static const std::vector<int32_t> script = {
      TestVocab::kChannelOpen, word_id("t"), word_id("h"), word_id("o"), word_id("u"), word_id("g"), word_id("h"),
      word_id("t"), TestVocab::kByte0 + 0x0A, word_id("\xE2\x96\x81" "the"), word_id("\xE2\x96\x81" "answer"),
      TestVocab::kChannelClose, word_id("\xE2\x96\x81" "sixty"), word_id("\xE2\x96\x81" "eight"), TestVocab::kEos};
  return g < script.size() ? script[g] : TestVocab::kEos;
}

/// The fake model: logits for the next token after `visible`.
void fake_logits(const std::vector<int32_t>& visible, int vocab, float* out) {
  const int32_t kE4 = TestVocab::kByte0 + 0xE4, kB8 = TestVocab::kByte0 + 0xB8, kAD = TestVocab::kByte0 + 0xAD;
  for (int v = 0; v < vocab; ++v) out[v] = v >= TestVocab::kFirstWord ? 0.0f : -20.0f;
  if (int32_t t = thinking_script(visible); t >= 0) {
    out[t] = 30.0f;
    return;
  }
  int32_t last = visible.empty() ? -1 : visible.back();
  if (last == kE4) { out[kB8] = 30.0f; return; }
  if (last == kB8) { out[kAD] = 30.0f; return; }
  uint64_t h = fnv1a(visible);
  int num_words = vocab - TestVocab::kFirstWord;
  // Text choices: every word token plus <0xE4> (starts a 3-token character).
  auto pick = [&](uint64_t x) -> int32_t {
    uint64_t k = x % static_cast<uint64_t>(num_words + 1);
    return k == static_cast<uint64_t>(num_words) ? kE4 : TestVocab::kFirstWord + static_cast<int32_t>(k);
  };
  int32_t target = (h % 23 == 0) ? TestVocab::kEos : pick(h >> 8);
  out[pick(h >> 20)] = std::max(out[pick(h >> 20)], 7.0f);
  out[pick(h >> 32)] = std::max(out[pick(h >> 32)], 8.0f);
  out[target] = 10.0f;
}

}  // namespace

std::string make_test_tokenizer_json() {
  nlohmann::json added = nlohmann::json::array();
  nlohmann::json vocab = nlohmann::json::object();
  const char* specials[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<|turn>", "<turn|>", "<|channel>", "<channel|>", "<|think|>"};
  int id = 0;
  for (const char* s : specials) {
    added.push_back({{"id", id}, {"content", s}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
    vocab[s] = id++;
  }
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = id++;
  for (const auto& w : word_tokens()) vocab[w] = id++;
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", nlohmann::json::array({{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                                          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", nlohmann::json::array()},
        {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", {2}}, {"tokens", {"<bos>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders", nlohmann::json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                            {{"type", "ByteFallback"}},
                                            {{"type", "Fuse"}}})}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", true},
        {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  return j.dump();
}

std::string make_test_generation_config_json() {
  return R"({"bos_token_id": 2, "eos_token_id": [1, 5], "pad_token_id": 0})";
}

FakeRunner::FakeRunner(int vocab_size, int num_blocks, int block_size, int max_position_embeddings,
                       std::chrono::microseconds step_delay)
    : num_blocks_(num_blocks), block_size_(block_size), delay_(step_delay),
      store_(static_cast<size_t>(num_blocks) * block_size, -1) {
  config_.model_type = "gemma4_text";
  config_.hidden_size = 8;
  config_.intermediate_size = 16;
  config_.num_hidden_layers = 1;
  config_.vocab_size = vocab_size;
  config_.max_position_embeddings = max_position_embeddings;
  config_.eos_token_ids = {TestVocab::kEos, TestVocab::kTurnClose};
  LayerConfig l;
  l.type = LayerType::kFull;
  l.head_dim = 8;
  l.num_heads = 1;
  l.num_kv_heads = 1;
  config_.layers = {l};
}

KvCacheSpec FakeRunner::kv_cache_spec() const {
  KvCacheSpec s;
  s.block_size = block_size_;
  s.num_blocks_full = num_blocks_;
  s.num_blocks_sliding = 0;
  s.sliding_window = 0;
  s.dtype = KvCacheDtype::kFP32;
  return s;
}

void FakeRunner::execute(std::span<const SeqStep> batch, std::span<float> logits) {
  if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
  const int vocab = config_.vocab_size;
  size_t out_row = 0;
  for (const SeqStep& s : batch) {
    auto slot = [&](int pos) -> int32_t& {
      size_t b = static_cast<size_t>(pos / block_size_);
      if (b >= s.block_table_full.size())
        throw InvalidArgument(fmt::format("fake runner: position {} beyond the block table ({} blocks)", pos,
                                          s.block_table_full.size()));
      int32_t blk = s.block_table_full[b];
      if (blk < 0 || blk >= num_blocks_) throw InvalidArgument(fmt::format("fake runner: block id {} out of range", blk));
      return store_[static_cast<size_t>(blk) * block_size_ + pos % block_size_];
    };
    for (size_t i = 0; i < s.tokens.size(); ++i) slot(s.start_pos + static_cast<int>(i)) = s.tokens[i];
    if (!s.want_logits) continue;
    int end = s.start_pos + static_cast<int>(s.tokens.size());
    std::vector<int32_t> visible(static_cast<size_t>(end));
    for (int p = 0; p < end; ++p) {
      visible[p] = slot(p);
      if (visible[p] < 0) throw InvalidArgument(fmt::format("fake runner: position {} was never written", p));
    }
    if ((out_row + 1) * vocab > logits.size()) throw InvalidArgument("fake runner: logits buffer too small");
    fake_logits(visible, vocab, logits.data() + out_row * vocab);
    ++out_row;
  }
}

int32_t FakeRunner::greedy_next(const std::vector<int32_t>& visible, int vocab_size) {
  std::vector<float> l(vocab_size);
  fake_logits(visible, vocab_size, l.data());
  int32_t best = 0;
  for (int v = 1; v < vocab_size; ++v)
    if (l[v] > l[best]) best = v;
  return best;
}

}  // namespace quench::test
