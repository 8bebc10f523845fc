// tests/tokenizer/incremental_detokenizer_test.cpp: streamed text equals decode() of the whole
// sequence and no delta ends inside a UTF-8 character.
#include "tokenizer/incremental_detokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "tokenizer/gemma4_tokenizer_fixture.h"
#include "tokenizer/utf8.h"

namespace quench {
namespace {

using Ids = std::vector<int32_t>;

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const utf8::Char c = utf8::decode_at(s, i);
    if (c.invalid) return false;
    i += c.len;
  }
  return true;
}

std::string stream(const Tokenizer& tok, const Ids& ids, bool skip, std::vector<std::string>* deltas = nullptr) {
  IncrementalDetokenizer d(tok, skip);
  std::string all;
  for (int32_t id : ids) {
    const std::string delta = d.push(id);
    if (deltas) deltas->push_back(delta);
    all += delta;
  }
  all += d.flush();
  EXPECT_EQ(all, d.text());
  return all;
}

void expect_stream_equals_decode(const Tokenizer& tok, const std::string& goldens) {
  std::istringstream in(testing::read_source_file(goldens));
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("kind", "") != "encode") continue;
    const Ids ids = j["ids"].get<Ids>();
    for (bool skip : {false, true}) {
      std::vector<std::string> deltas;
      EXPECT_EQ(stream(tok, ids, skip, &deltas), tok.decode(ids, skip)) << j["text"].dump();
      for (const std::string& d : deltas) EXPECT_TRUE(valid_utf8(d)) << j["text"].dump();
    }
    ++n;
  }
  EXPECT_GE(n, 200);
}

TEST(IncrementalDetokenizer, ConcatenationEqualsDecodeOnGoldenStrings) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  expect_stream_equals_decode(tok, "tests/data/tokenizer/gemma4_goldens.jsonl");
}

TEST(IncrementalDetokenizer, ConcatenationEqualsDecodeOnSmallModelGoldens) {
  const Tokenizer tok = Tokenizer::load(std::filesystem::path(QUENCH_SOURCE_DIR) / "models/gemma4-tiny-it/tokenizer.json");
  expect_stream_equals_decode(tok, "tests/data/tokenizer/gemma4_tiny_goldens.jsonl");
}

TEST(IncrementalDetokenizer, HoldsByteFallbackCharacterUntilComplete) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  const Ids ids = tok.encode("𓀀");  // not in the vocabulary: four byte tokens
  ASSERT_EQ(ids.size(), 4u);
  IncrementalDetokenizer d(tok, true);
  EXPECT_EQ(d.push(ids[0]), "");
  EXPECT_EQ(d.push(ids[1]), "");
  EXPECT_EQ(d.push(ids[2]), "");
  EXPECT_EQ(d.num_pending_bytes(), 3u);
  EXPECT_EQ(d.push(ids[3]), "𓀀");
  EXPECT_EQ(d.num_pending_bytes(), 0u);
  EXPECT_EQ(d.flush(), "");
}

TEST(IncrementalDetokenizer, SkippedSpecialTokensDoNotBreakAByteRun) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  const Ids bytes = tok.encode("𓀀");
  const Ids ids = {bytes[0], bytes[1], 106, bytes[2], bytes[3]};
  EXPECT_EQ(stream(tok, ids, /*skip=*/true), "𓀀");
  EXPECT_EQ(stream(tok, ids, /*skip=*/true), tok.decode(ids, true));
}

TEST(IncrementalDetokenizer, UnfinishedCharacterBecomesReplacementPerByte) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  const int32_t e5 = *tok.token_to_id("<0xE5>"), x8f = *tok.token_to_id("<0x8F>"), a = *tok.token_to_id("a");
  const std::string fffd = "\xef\xbf\xbd";
  IncrementalDetokenizer d(tok, false);
  EXPECT_EQ(d.push(e5), "");
  EXPECT_EQ(d.push(x8f), "");
  EXPECT_EQ(d.push(a), fffd + fffd + "a");  // as decode(): U+FFFD per byte of the broken run
  EXPECT_EQ(d.push(e5), "");
  EXPECT_EQ(d.flush(), fffd);
  EXPECT_EQ(d.text(), tok.decode(Ids{e5, x8f, a, e5}, false));
  // A byte that can never start a character is replaced at once.
  IncrementalDetokenizer d2(tok, false);
  EXPECT_EQ(d2.push(*tok.token_to_id("<0xFF>")), fffd);
}

TEST(IncrementalDetokenizer, RejectsIdsOutsideTheVocabulary) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  IncrementalDetokenizer d(tok, false);
  EXPECT_THROW(d.push(tok.vocab_size()), InvalidArgument);
}

TEST(IncrementalDetokenizer, StripDecoderRemovesOnlyTheFirstLeadingSpace) {
  nlohmann::json j = {{"added_tokens", nlohmann::json::array()},
                      {"normalizer", {{"type", "Sequence"},
                                      {"normalizers", {{{"type", "Prepend"}, {"prepend", "▁"}},
                                                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}}},
                      {"pre_tokenizer", nullptr},
                      {"post_processor", nullptr},
                      {"decoder", {{"type", "Sequence"},
                                   {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                                                 {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
                                                 {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
                      {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"fuse_unk", true},
                                 {"vocab", {{"<unk>", 0}, {"▁hi", 1}, {"▁there", 2}}}, {"merges", nlohmann::json::array()}}}};
  const Tokenizer tok = Tokenizer::from_json_text(j.dump(), "strip.json");
  IncrementalDetokenizer d(tok, false);
  EXPECT_EQ(d.push(1), "hi");
  EXPECT_EQ(d.push(2), " there");
  EXPECT_EQ(d.text(), tok.decode(Ids{1, 2}, false));
}

TEST(IncrementalDetokenizer, FileWithoutDecoderJoinsTokensWithSpaces) {
  // tokenizers' TokenizerImpl::decode joins tokens with " " when there is no decoder.
  nlohmann::json j = {{"added_tokens", nlohmann::json::array()}, {"normalizer", nullptr}, {"pre_tokenizer", nullptr},
                      {"post_processor", nullptr}, {"decoder", nullptr},
                      {"model", {{"type", "BPE"}, {"unk_token", "<unk>"},
                                 {"vocab", {{"<unk>", 0}, {"ab", 1}, {"c", 2}}}, {"merges", nlohmann::json::array()}}}};
  const Tokenizer tok = Tokenizer::from_json_text(j.dump(), "nodecoder.json");
  EXPECT_EQ(tok.decode(Ids{1, 2, 1}, false), "ab c ab");
  EXPECT_EQ(stream(tok, Ids{1, 2, 1}, false), "ab c ab");
}

}  // namespace
}  // namespace quench
