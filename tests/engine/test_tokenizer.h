// tests/engine/test_tokenizer.h: a 64-id Gemma-style tokenizer.json made at test time (BPE with
// byte fallback, "▁" for spaces, the Gemma decoder chain), sized to FakeRunner's vocabulary.
//   0 <pad>  1 <eos>  2 <bos> (special)   3 <0xE4>  4 <0xB8>  5 <0xAD>  (bytes of "中")
//   6 "▁"  7..32 "a".."z"  33 "▁the"  34 "ST"  35 "OP"  36 "!"  37 "."  38..63 "A".."Z"
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace quench::test {

inline std::shared_ptr<const Tokenizer> make_test_tokenizer() {
  using nlohmann::json;
  json vocab = json::object();
  vocab["<pad>"] = 0;
  vocab["<eos>"] = 1;
  vocab["<bos>"] = 2;
  vocab["<0xE4>"] = 3;
  vocab["<0xB8>"] = 4;
  vocab["<0xAD>"] = 5;
  vocab["\xE2\x96\x81"] = 6;
  for (int i = 0; i < 26; ++i) vocab[std::string(1, static_cast<char>('a' + i))] = 7 + i;
  vocab["\xE2\x96\x81the"] = 33;
  vocab["ST"] = 34;
  vocab["OP"] = 35;
  vocab["!"] = 36;
  vocab["."] = 37;
  for (int i = 0; i < 26; ++i) vocab[std::string(1, static_cast<char>('A' + i))] = 38 + i;
  json added = json::array();
  const char* specials[] = {"<pad>", "<eos>", "<bos>"};
  for (int i = 0; i < 3; ++i)
    added.push_back({{"id", i}, {"content", specials[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  json j = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                  {{"type", "ByteFallback"}},
                                  {{"type", "Fuse"}}})}}},
      {"model",
       {{"type", "BPE"}, {"byte_fallback", true}, {"fuse_unk", false}, {"vocab", vocab},
        {"merges", json::array({"S T", "O P"})}}}};
  return std::make_shared<const Tokenizer>(Tokenizer::from_json_text(j.dump(), "test_tokenizer.json"));
}

}  // namespace quench::test
