// Robustness of the config parsers: deterministic random mutations of valid config.json /
// quantization_config objects (values replaced by other JSON types, keys removed, numbers made
// huge or negative) must either parse or throw a quench::Error; never a JSON library exception,
// never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>

#include "core/error.h"
#include "io/model_config.h"
#include "io/quant_config.h"
#include "io/test_util.h"

namespace quench {
namespace {

using json = nlohmann::json;

const json kReplacements[] = {nullptr, true, false, 0, -1, 1, 7, 2147483648LL, -9223372036854775807LL,
                              18446744073709551615ULL, 0.5, -3.25, 1e300, "", "x", "full_attention",
                              "proportional", "FP8", json::array(), json::array({1, 2}), json::array({"a"}),
                              json::object(), json::object({{"rope_type", "default"}}),
                              json::object({{"quant_algo", "NVFP4"}})};

// Collects pointers to every value node (objects, arrays and leaves) of `j`.
void collect(json& j, std::vector<json*>& out) {
  out.push_back(&j);
  if (j.is_object() || j.is_array()) {
    for (auto& v : j) collect(v, out);
  }
}

// Iterations per test; QUENCH_MUTATION_ITERS raises it for a longer local run.
int iterations() {
  const char* env = std::getenv("QUENCH_MUTATION_ITERS");
  return env ? std::max(1, std::atoi(env)) : 3000;
}

json mutate(json j, std::mt19937& rng) {
  const int ops = 1 + static_cast<int>(rng() % 3);
  for (int k = 0; k < ops; ++k) {
    std::vector<json*> nodes;
    collect(j, nodes);
    json* n = nodes[rng() % nodes.size()];
    if (n->is_object() && !n->empty() && rng() % 2) {
      auto it = n->begin();
      std::advance(it, static_cast<long>(rng() % n->size()));
      n->erase(it.key());  // drop a key
    } else {
      *n = kReplacements[rng() % (sizeof kReplacements / sizeof *kReplacements)];
    }
  }
  return j;
}

TEST(ConfigMutation, ModelConfigOnlyThrowsQuenchErrors) {
  std::ifstream in(QUENCH_SOURCE_DIR "/tests/data/io/gemma4-12b-config.json");
  const json base = json::parse(in);
  std::mt19937 rng(424242 + (std::getenv("QUENCH_MUTATION_SEED") ? std::atoi(std::getenv("QUENCH_MUTATION_SEED")) : 0));
  int ok = 0, rejected = 0;
  for (int i = 0; i < iterations(); ++i) {
    const json j = mutate(base, rng);
    try {
      const ModelConfig c = ModelConfig::from_json(j, "mutated.json");
      ++ok;
      // Whatever parsed must be internally consistent.
      ASSERT_EQ(static_cast<int>(c.layers.size()), c.num_hidden_layers);
      for (const auto& L : c.layers) {
        ASSERT_GT(L.head_dim, 0);
        ASSERT_GT(L.num_kv_heads, 0);
        ASSERT_EQ(L.num_heads % L.num_kv_heads, 0);
      }
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL() << "non-quench exception " << e.what() << " for " << j.dump();
    }
  }
  EXPECT_GT(ok, 100);
  EXPECT_GT(rejected, 100);
}

TEST(ConfigMutation, QuantConfigOnlyThrowsQuenchErrors) {
  const json base = json::parse(R"({"quantization_config": {
      "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "float", "group_size": 16}, "targets": ["Linear"]}},
      "ignore": ["lm_head", "model.language_model.layers.0.self_attn*"], "quant_algo": "NVFP4", "group_size": 16,
      "kv_cache_scheme": {"dynamic": false, "num_bits": 8, "type": "float"}, "quant_method": "modelopt",
      "quantized_layers": {"model.language_model.layers.0.mlp.up_proj": {"quant_algo": "FP8"}}}})");
  testing::TempDir dir;
  std::mt19937 rng(777 + (std::getenv("QUENCH_MUTATION_SEED") ? std::atoi(std::getenv("QUENCH_MUTATION_SEED")) : 0));
  int ok = 0, rejected = 0;
  for (int i = 0; i < iterations(); ++i) {
    json j = mutate(base, rng);
    if (rng() % 3 == 0 && j.is_object() && j.contains("quantization_config") && j["quantization_config"].is_object()) {
      j["quantization_config"]["quant_algo"] = "MIXED_PRECISION";
    }
    try {
      const QuantConfig q = QuantConfig::load(dir.path(), j);
      (void)q.format_of("model.language_model.layers.0.mlp.up_proj");
      ++ok;
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL() << "non-quench exception " << e.what() << " for " << j.dump();
    }
  }
  EXPECT_GT(ok, 100);
  EXPECT_GT(rejected, 100);
}

}  // namespace
}  // namespace quench
