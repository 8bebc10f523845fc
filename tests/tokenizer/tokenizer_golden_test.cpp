// tests/tokenizer/tokenizer_golden_test.cpp: quench's Tokenizer against golden ids and texts made by
// an independent implementation (tokenizers.js, tools/fixtures/make_tokenizer_goldens.mjs) on the
// real Gemma 4 vocabulary: every encode and decode must match exactly.
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

std::vector<nlohmann::json> golden_records(const std::string& kind) {
  std::istringstream in(testing::read_source_file("tests/data/tokenizer/gemma4_goldens.jsonl"));
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (j.value("kind", "") == kind) out.push_back(std::move(j));
  }
  return out;
}

TEST(TokenizerGolden, EncodeMatchesReferenceExactly) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  const auto records = golden_records("encode");
  ASSERT_GE(records.size(), 200u);
  int mismatches = 0;
  for (const auto& r : records) {
    const std::string text = r["text"];
    const auto want = r["ids"].get<std::vector<int32_t>>();
    EncodeOptions opt;
    opt.add_special_tokens = r["add_special_tokens"];
    const auto got = tok.encode(text, opt);
    if (got != want && ++mismatches <= 20) {
      ADD_FAILURE() << "text " << nlohmann::json(text).dump() << " add_special_tokens=" << opt.add_special_tokens
                    << "\n  want " << shown(want) << "\n  got  " << shown(got);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << records.size() << " strings";
}

TEST(TokenizerGolden, DecodeMatchesReferenceExactly) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  const auto records = golden_records("decode");
  ASSERT_GE(records.size(), 200u);
  int mismatches = 0;
  for (const auto& r : records) {
    const auto ids = r["ids"].get<std::vector<int32_t>>();
    const std::string want = r["text"];
    const std::string got = tok.decode(ids, r["skip_special_tokens"].get<bool>());
    if (got != want && ++mismatches <= 20) {
      ADD_FAILURE() << "ids " << shown(ids) << " skip=" << r["skip_special_tokens"] << "\n  want "
                    << nlohmann::json(want).dump() << "\n  got  " << nlohmann::json(got).dump();
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << records.size() << " id sequences";
}

}  // namespace
}  // namespace quench
