// tests/tokenizer/decoder_test.cpp: the decoder chain on token strings. ByteFallback expectations are
// the Rust tokenizers crate's own unit test (decoders/byte_fallback.rs `tests::decode`); Strip's
// follow decoders/strip.rs (up to `start` leading and `stop` trailing copies of the character).
#include "tokenizer/decoder.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace quench {
namespace {

Decoder parse(const nlohmann::json& j) { return Decoder::from_json({j, "t.json", "/decoder"}); }

TEST(Decoder, ByteFallbackAsRustUnitTest) {
  const Decoder d = parse({{"type", "ByteFallback"}});
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(d.decode({"Hey", "friend!"}), "Heyfriend!");
  EXPECT_EQ(d.decode({"<0x61>"}), "a");
  EXPECT_EQ(d.decode({"<0xE5>"}), fffd);
  EXPECT_EQ(d.decode({"<0xE5>", "<0x8f>"}), fffd + fffd);
  EXPECT_EQ(d.decode({"<0xE5>", "<0x8f>", "<0xab>"}), "\xe5\x8f\xab");
  EXPECT_EQ(d.decode({"<0xE5>", "<0x8f>", "<0xab>", "a"}), "\xe5\x8f\xab" "a");
  EXPECT_EQ(d.decode({"<0xE5>", "<0x8f>", "a"}), fffd + fffd + "a");
  // String::from_utf8 keeps a leading U+FEFF (JavaScript's TextDecoder would drop it).
  EXPECT_EQ(d.decode({"<0xEF>", "<0xBB>", "<0xBF>", "a"}), "\xef\xbb\xbf" "a");
}

TEST(Decoder, ByteTokenShape) {
  EXPECT_EQ(byte_token_value("<0x0A>"), 0x0A);
  EXPECT_EQ(byte_token_value("<0xff>"), 0xFF);
  EXPECT_EQ(byte_token_value("<0xG1>"), -1);
  EXPECT_EQ(byte_token_value("<0x0A"), -1);
  EXPECT_EQ(byte_token_value("<0x0AB>"), -1);
}

TEST(Decoder, GemmaChain) {
  const Decoder d = parse({{"type", "Sequence"},
                           {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                                         {{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}});
  EXPECT_EQ(d.decode({"Hello", "▁world", "<0xE4>", "<0xB8>", "<0xAD>", "▁▁x"}), "Hello world\xe4\xb8\xad  x");
  EXPECT_EQ(d.decode_piece("▁world"), " world");
  EXPECT_TRUE(d.has_byte_fallback());
  EXPECT_EQ(d.strip_start_after_fuse(), 0u);
}

TEST(Decoder, StripPerTokenAndAfterFuse) {
  const Decoder per_token = parse({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 2}});
  EXPECT_EQ(per_token.decode({"  a   ", " b"}), " a " "b");
  const Decoder after_fuse = parse({{"type", "Sequence"},
                                    {"decoders", {{{"type", "Fuse"}}, {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}});
  EXPECT_EQ(after_fuse.decode({" a", " b"}), "a b");
  EXPECT_EQ(after_fuse.strip_start_after_fuse(), 1u);
}

TEST(Decoder, RejectsUnsupportedKinds) {
  EXPECT_THROW(parse({{"type", "Metaspace"}}), FormatError);
  EXPECT_THROW(parse({{"type", "Replace"}, {"pattern", {{"Regex", "x"}}}, {"content", ""}}), FormatError);
  EXPECT_THROW(parse({{"type", "Strip"}, {"content", "ab"}, {"start", 1}, {"stop", 0}}), FormatError);
}

}  // namespace
}  // namespace quench
