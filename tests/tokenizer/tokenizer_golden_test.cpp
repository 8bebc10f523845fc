// tests/tokenizer/tokenizer_golden_test.cpp: quench's Tokenizer against golden ids and texts made by
// an independent implementation (tokenizers.js, tools/fixtures/make_tokenizer_goldens.mjs) on the
// real Gemma 4 vocabulary and on the small model's vocabulary (models/gemma4-tiny-it): every encode
// and decode must match exactly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/gemma4_tokenizer_fixture.h"
#include "tokenizer/tokenizer.h"

namespace quench {
namespace {

std::string shown(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

std::vector<nlohmann::json> golden_records(const std::string& kind,
                                          const std::string& file = "tests/data/tokenizer/gemma4_goldens.jsonl") {
  std::istringstream in(testing::read_source_file(file));
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (j.value("kind", "") == kind) out.push_back(std::move(j));
  }
  return out;
}

void expect_encode_goldens(const Tokenizer& tok, const std::string& file) {
  const auto records = golden_records("encode", file);
  ASSERT_GE(records.size(), 200u) << file;
  int mismatches = 0;
  for (const auto& r : records) {
    const std::string text = r["text"];
    const auto want = r["ids"].get<std::vector<int32_t>>();
    EncodeOptions opt;
    opt.add_special_tokens = r["add_special_tokens"];
    const auto got = tok.encode(text, opt);
    if (got != want && ++mismatches <= 20) {
      ADD_FAILURE() << file << ": text " << nlohmann::json(text).dump() << " add_special_tokens=" << opt.add_special_tokens
                    << "\n  want " << shown(want) << "\n  got  " << shown(got);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << records.size() << " strings in " << file;
}

void expect_decode_goldens(const Tokenizer& tok, const std::string& file) {
  const auto records = golden_records("decode", file);
  ASSERT_GE(records.size(), 200u) << file;
  int mismatches = 0;
  for (const auto& r : records) {
    const auto ids = r["ids"].get<std::vector<int32_t>>();
    const std::string want = r["text"];
    const std::string got = tok.decode(ids, r["skip_special_tokens"].get<bool>());
    if (got != want && ++mismatches <= 20) {
      ADD_FAILURE() << file << ": ids " << shown(ids) << " skip=" << r["skip_special_tokens"] << "\n  want "
                    << nlohmann::json(want).dump() << "\n  got  " << nlohmann::json(got).dump();
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << records.size() << " id sequences in " << file;
}

constexpr const char* kTinyGoldens = "tests/data/tokenizer/gemma4_tiny_goldens.jsonl";

Tokenizer tiny_tokenizer() {
  return Tokenizer::load(std::filesystem::path(QUENCH_SOURCE_DIR) / "models/gemma4-tiny-it/tokenizer.json");
}

TEST(TokenizerGolden, EncodeMatchesReferenceExactly) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  expect_encode_goldens(tok, "tests/data/tokenizer/gemma4_goldens.jsonl");
}

TEST(TokenizerGolden, DecodeMatchesReferenceExactly) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  expect_decode_goldens(tok, "tests/data/tokenizer/gemma4_goldens.jsonl");
}

TEST(TokenizerGolden, SmallModelEncodeAndDecodeMatchReference) {
  const Tokenizer tok = tiny_tokenizer();
  expect_encode_goldens(tok, kTinyGoldens);
  expect_decode_goldens(tok, kTinyGoldens);
}

TEST(TokenizerGolden, SmallModelControlTokensAtGemma4Ids) {
  // Ids from the Gemma 4 table (gemma4-architecture.md §4.1).
  const Tokenizer tok = tiny_tokenizer();
  const std::pair<int32_t, const char*> table[] = {
      {0, "<pad>"}, {1, "<eos>"}, {2, "<bos>"}, {3, "<unk>"}, {46, "<|tool>"}, {47, "<tool|>"},
      {48, "<|tool_call>"}, {49, "<tool_call|>"}, {50, "<|tool_response>"}, {51, "<tool_response|>"},
      {52, "<|\"|>"}, {98, "<|think|>"}, {100, "<|channel>"}, {101, "<channel|>"}, {105, "<|turn>"},
      {106, "<turn|>"}, {107, "\n"}};
  for (const auto& [id, name] : table) EXPECT_EQ(tok.id_to_token(id), name) << id;
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
}

}  // namespace
}  // namespace quench
