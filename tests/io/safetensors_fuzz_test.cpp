// Runs the libFuzzer entry point of tests/fuzz/safetensors_header_fuzz.cpp under g++ on a few
// thousand deterministic mutations of valid headers, so CI exercises the parser's error paths
// without clang. Each case must parse with all invariants holding or throw FormatError.
#define QUENCH_FUZZ_NO_MAIN
#include "fuzz/safetensors_header_fuzz.cpp"

#include <gtest/gtest.h>

#include <random>

namespace quench {
namespace {

std::string with_size_prefix(uint64_t data_size, const std::string& header) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((data_size >> (8 * i)) & 0xff);
  return out + header;
}

bool run(const std::string& input) {
  return fuzz::check_safetensors_header(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

const std::vector<std::string>& seeds() {
  static const std::vector<std::string> s = {
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}})",
      R"({"w":{"dtype":"U8","shape":[8,4],"data_offsets":[0,32]},"w_scale":{"dtype":"F8_E4M3","shape":[8,1],"data_offsets":[32,40]},"g":{"dtype":"F32","shape":[],"data_offsets":[40,44]}})",
      R"({"e":{"dtype":"I64","shape":[0],"data_offsets":[0,0]},"x":{"dtype":"F16","shape":[1,1,1],"data_offsets":[0,2]}})",
  };
  return s;
}

// Tokens spliced in by the mutator: the values and shapes that hit the parser's branches.
const char* const kDictionary[] = {
    "-1", "0", "18446744073709551615", "18446744073709551616", "9223372036854775807", "4294967296", "1e300", "1.5",
    "\"F8_E4M3\"", "\"F4\"", "\"BOOL\"", "[]", "{}", "null", "true", "\"__metadata__\"", "\"dtype\"", "\"shape\"",
    "\"data_offsets\"", "[0,0]", "[44,0]", ",", ":", "\"", "\\u0000", "[[[[[[", "}}}}",
};

std::string mutate(std::string s, std::mt19937& rng) {
  const int ops = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < ops; ++k) {
    const std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 6) {
      case 0:  // flip a byte
        if (!s.empty()) s[pos % s.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 1:  // insert a random byte
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<char>(rng() % 256));
        break;
      case 2: {  // delete a range
        const std::size_t len = rng() % 8;
        if (pos < s.size()) s.erase(pos, len);
        break;
      }
      case 3: {  // replace a run of digits (or anything) by a dictionary token
        const char* tok = kDictionary[rng() % (sizeof kDictionary / sizeof *kDictionary)];
        const std::size_t len = rng() % 6;
        if (pos <= s.size()) s.replace(pos, std::min(len, s.size() - pos), tok);
        break;
      }
      case 4:  // truncate
        s.resize(pos);
        break;
      case 5: {  // duplicate a chunk
        if (s.empty()) break;
        const std::size_t from = rng() % s.size();
        const std::size_t len = std::min<std::size_t>(rng() % 40, s.size() - from);
        s.insert(pos, s.substr(from, len));
        break;
      }
    }
  }
  return s;
}

TEST(SafetensorsFuzz, SeedsParse) {
  for (const auto& s : seeds()) EXPECT_TRUE(run(with_size_prefix(44, s))) << s;
}

TEST(SafetensorsFuzz, DeterministicMutationsOnlyThrowFormatError) {
  std::mt19937 rng(20261130);
  int parsed = 0, rejected = 0;
  for (int i = 0; i < 5000; ++i) {
    const std::string& seed = seeds()[static_cast<std::size_t>(i) % seeds().size()];
    const uint64_t data_size = (rng() % 4 == 0) ? rng() % 64 : 44;
    // check_safetensors_header aborts (failing this test binary) on any invariant violation.
    if (run(with_size_prefix(data_size, mutate(seed, rng)))) ++parsed;
    else ++rejected;
  }
  // Both outcomes must occur, or the mutator is not exercising the parser.
  EXPECT_GT(parsed, 50);
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace quench
