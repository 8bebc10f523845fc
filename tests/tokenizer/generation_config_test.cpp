// tests/tokenizer/generation_config_test.cpp: generation_config.json parsing, the config.json
// fallback and typed errors. Expected values are Gemma-4-12B-it's as given by Google's converter
// (../shared/reference/gemma4-architecture.md §1.3), not quench output.
#include "tokenizer/generation_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <unistd.h>

#include "core/error.h"
#include "tokenizer/gemma4_tokenizer_fixture.h"

namespace quench {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("quench_gencfg_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path_ / name) << text; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

constexpr const char* kGemma4ItGenerationConfig = R"({
  "bos_token_id": 2,
  "do_sample": true,
  "eos_token_id": [1, 106, 50],
  "pad_token_id": 0,
  "suppress_tokens": [258883, 258882],
  "temperature": 1.0,
  "top_k": 64,
  "top_p": 0.95,
  "transformers_version": "5.10.0.dev0"
})";

TEST(GenerationConfig, LoadsGemma4ItValues) {
  TempDir d;
  d.write("generation_config.json", kGemma4ItGenerationConfig);
  const GenerationConfig g = GenerationConfig::load(d.path());
  EXPECT_EQ(g.eos_token_ids, (std::vector<int32_t>{1, 106, 50}));
  EXPECT_EQ(g.suppress_tokens, (std::vector<int32_t>{258883, 258882}));
  EXPECT_EQ(g.bos_token_id, 2);
  EXPECT_EQ(g.pad_token_id, 0);
  EXPECT_EQ(g.do_sample, true);
  EXPECT_DOUBLE_EQ(*g.temperature, 1.0);
  EXPECT_EQ(*g.top_k, 64);
  EXPECT_DOUBLE_EQ(*g.top_p, 0.95);
  EXPECT_TRUE(g.is_eos(106));
  EXPECT_TRUE(g.is_eos(50));
  EXPECT_FALSE(g.is_eos(2));
  EXPECT_EQ(g.source, (d.path() / "generation_config.json").string());
}

TEST(GenerationConfig, StopAndSuppressIdsNameTheGemma4ControlTokens) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  const GenerationConfig g = GenerationConfig::from_json_text(kGemma4ItGenerationConfig, "generation_config.json");
  EXPECT_EQ(tok.id_to_token(g.eos_token_ids[0]), "<eos>");
  EXPECT_EQ(tok.id_to_token(g.eos_token_ids[1]), "<turn|>");
  EXPECT_EQ(tok.id_to_token(g.eos_token_ids[2]), "<|tool_response>");
  EXPECT_EQ(tok.id_to_token(g.suppress_tokens[0]), "<audio|>");
  EXPECT_EQ(tok.id_to_token(g.suppress_tokens[1]), "<image|>");
  EXPECT_EQ(g.bos_token_id, tok.bos_id());
  EXPECT_EQ(g.pad_token_id, tok.pad_id());
}

TEST(GenerationConfig, SmallModelStopsLikeGemma4It) {
  const GenerationConfig g = GenerationConfig::load(fs::path(QUENCH_SOURCE_DIR) / "models/gemma4-tiny-it");
  EXPECT_EQ(g.eos_token_ids, (std::vector<int32_t>{1, 106, 50}));  // the -it stop list, §1.3
  EXPECT_EQ(g.bos_token_id, 2);
  EXPECT_EQ(g.pad_token_id, 0);
}

TEST(GenerationConfig, SingleEosIdAndAbsentSamplingDefaults) {
  const GenerationConfig g = GenerationConfig::from_json_text(R"({"eos_token_id": 1, "bos_token_id": 2})", "g.json");
  EXPECT_EQ(g.eos_token_ids, std::vector<int32_t>{1});
  EXPECT_TRUE(g.suppress_tokens.empty());
  EXPECT_EQ(g.pad_token_id, -1);
  EXPECT_FALSE(g.do_sample.has_value());
  EXPECT_FALSE(g.temperature.has_value());
  EXPECT_FALSE(g.top_k.has_value());
  EXPECT_FALSE(g.top_p.has_value());
}

TEST(GenerationConfig, FallsBackToConfigJsonIds) {
  TempDir d;
  d.write("config.json", R"({"model_type": "gemma4_unified", "eos_token_id": [1, 106],
                             "text_config": {"pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2}})");
  const GenerationConfig g = GenerationConfig::load(d.path());
  EXPECT_EQ(g.eos_token_ids, (std::vector<int32_t>{1, 106}));  // top level wins over text_config
  EXPECT_EQ(g.bos_token_id, 2);
  EXPECT_EQ(g.pad_token_id, 0);
  EXPECT_TRUE(g.suppress_tokens.empty());
  EXPECT_FALSE(g.temperature.has_value());
}

TEST(GenerationConfig, ErrorsNameFileAndKey) {
  TempDir d;
  EXPECT_THROW(GenerationConfig::load(d.path()), IoError);
  auto expect_format_error = [](const std::string& json, const std::string& key) {
    try {
      GenerationConfig::from_json_text(json, "gc.json");
      ADD_FAILURE() << "expected FormatError for " << json;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("gc.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expect_format_error(R"({"eos_token_id": "1"})", "eos_token_id");
  expect_format_error(R"({"eos_token_id": [1, -5]})", "eos_token_id[1]");
  expect_format_error(R"({"suppress_tokens": [1.5]})", "suppress_tokens[0]");
  expect_format_error(R"({"temperature": "hot"})", "temperature");
  expect_format_error(R"({"top_k": 6.4})", "top_k");
  expect_format_error(R"({"do_sample": 1})", "do_sample");
  expect_format_error(R"([1, 2])", "object");
  expect_format_error(R"({"eos_token_id": )", "invalid JSON");
}

}  // namespace
}  // namespace quench
