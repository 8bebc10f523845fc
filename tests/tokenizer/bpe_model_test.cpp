// tests/tokenizer/bpe_model_test.cpp: BPE merge order and unk handling on hand-made vocabularies whose
// results are worked out by hand (huggingface/tokenizers models/bpe/word.rs: lowest rank first, the
// leftmost pair on equal ranks; model.rs: consecutive unknown characters fuse when fuse_unk).
#include <gtest/gtest.h>

#include "tokenizer/tiny_tokenizer_json.h"

namespace quench {
namespace {

using testing::base_tokenizer;
using testing::from;
using testing::kAbcVocab;
using testing::pairs;
using Ids = std::vector<int32_t>;

TEST(BpeModel, MergesApplyInRankOrder) {
  // "abc": with (a,b) ranked first -> ab + c; with (b,c) first -> a + bc.
  EXPECT_EQ(from(base_tokenizer(kAbcVocab, pairs({{"a", "b"}, {"b", "c"}}))).encode("abc"), (Ids{4, 3}));
  EXPECT_EQ(from(base_tokenizer(kAbcVocab, pairs({{"b", "c"}, {"a", "b"}}))).encode("abc"), (Ids{1, 5}));
  // The string form "a b" of merges is accepted too; a merge made of merged symbols continues.
  EXPECT_EQ(from(base_tokenizer(kAbcVocab, nlohmann::json::array({"b c", "a bc"}))).encode("abc"), (Ids{6}));
}

TEST(BpeModel, EqualRankMergesLeftmostFirst) {
  // "aaa" with the single merge (a,a): the leftmost pair merges first -> aa + a, not a + aa.
  EXPECT_EQ(from(base_tokenizer(kAbcVocab, pairs({{"a", "a"}}))).encode("aaa"), (Ids{7, 1}));
  EXPECT_EQ(from(base_tokenizer(kAbcVocab, pairs({{"a", "a"}}))).encode("aaaa"), (Ids{7, 7}));
}

TEST(BpeModel, UnknownCharactersFuseIntoOneUnk) {
  EXPECT_EQ(from(base_tokenizer(kAbcVocab, nlohmann::json::array())).encode("axyzb"), (Ids{1, 0, 2}));
  auto j = base_tokenizer(kAbcVocab, nlohmann::json::array());
  j["model"]["fuse_unk"] = false;
  EXPECT_EQ(from(j).encode("axyzb"), (Ids{1, 0, 0, 0, 2}));
}

}  // namespace
}  // namespace quench
