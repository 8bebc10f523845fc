// Tests of the ablation helpers that need no model: first-token KL against a closed form, marker
// matching (heretic's normalization), prompt-set reading (text and JSONL, errors naming file and
// line), layer lists, and difference-of-means statistics on synthetic captures.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include "ablate/ablate.h"
#include "ablate/directions.h"
#include "ablate/metrics.h"
#include "ablate/prompts.h"
#include "core/error.h"

namespace {

namespace fs = std::filesystem;
namespace ab = quench::ablate;

fs::path write_tmp(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("quench-ablate-" + std::to_string(getpid()) + "-" + name);
  std::ofstream(p) << text;
  return p;
}

TEST(AblateMetrics, FirstTokenKlMatchesClosedForm) {
  ab::Captures p, q;
  p.num_prompts = q.num_prompts = 2;
  p.vocab = q.vocab = 3;
  p.logits = {0.f, 0.f, 0.f, 1.f, 2.f, 3.f};
  q.logits = {0.f, 0.f, 0.f, 3.f, 2.f, 1.f};
  const auto kl = ab::first_token_kl(p, q);
  ASSERT_EQ(kl.size(), 2u);
  EXPECT_NEAR(kl[0], 0.0, 1e-15);
  // Independent: P = softmax(1,2,3), Q = reverse; KL = sum P log(P/Q) = (p3 - p1) * 2.
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const double p1 = std::exp(1.0) / z, p3 = std::exp(3.0) / z;
  EXPECT_NEAR(kl[1], 2.0 * (p3 - p1), 1e-12);
}

TEST(AblateMetrics, MarkerNormalization) {
  const std::vector<std::string> m = {"I can't help with questions about the weather"};
  EXPECT_TRUE(ab::has_marker("I'm sorry, but I CAN\xE2\x80\x99T help with **questions** about the weather.", m));
  EXPECT_FALSE(ab::has_marker("It will be sunny in Paris.", m));
  EXPECT_TRUE(ab::has_marker("   ", m));  // empty replies count (heretic)
}

TEST(AblatePrompts, TextAndJsonl) {
  const auto t = ab::read_prompts(write_tmp("a.txt", "first\r\n\nsecond  \n"));
  EXPECT_EQ(t, (std::vector<std::string>{"first", "second  "}));
  const auto j = ab::read_prompts(write_tmp("a.jsonl", "{\"prompt\": \"x\\ny\", \"id\": 1}\n\n{\"prompt\": \"z\"}\n"));
  EXPECT_EQ(j, (std::vector<std::string>{"x\ny", "z"}));
  try {
    ab::read_prompts(write_tmp("bad.jsonl", "{\"prompt\": \"x\"}\n{\"text\": \"y\"}\n"));
    FAIL() << "expected FormatError";
  } catch (const quench::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ab::read_prompts(write_tmp("empty.txt", "\n \n")), quench::InvalidArgument);
}

TEST(AblatePrompts, LayerLists) {
  EXPECT_EQ(ab::parse_layer_list("24,37,39,26", 48, "--basis-layers"), (std::vector<int>{24, 37, 39, 26}));
  EXPECT_EQ(ab::parse_layer_list("3-5,9", 12, "--edit-layers"), (std::vector<int>{3, 4, 5, 9}));
  EXPECT_THROW(ab::parse_layer_list("3,12", 12, "--edit-layers"), quench::InvalidArgument);
  EXPECT_THROW(ab::parse_layer_list("3,x", 12, "--edit-layers"), quench::InvalidArgument);
  EXPECT_THROW(ab::parse_layer_list("3,3", 12, "--edit-layers"), quench::InvalidArgument);
  EXPECT_THROW(ab::parse_layer_list("5-3", 12, "--edit-layers"), quench::InvalidArgument);
}

// Synthetic captures: A = B + a shift of size `shift[l]` along e_0 at layer l, plus noise.
ab::Captures synthetic(int n, int L, int d, const std::vector<double>& shift, std::mt19937& rng) {
  ab::Captures c;
  c.num_prompts = n;
  c.num_layers = L;
  c.hidden = d;
  c.residual.resize(static_cast<std::size_t>(n) * L * d);
  c.embed.assign(static_cast<std::size_t>(n) * d, 0.f);
  std::normal_distribution<float> noise(0.f, 1.f);
  for (int p = 0; p < n; ++p)
    for (int l = 0; l < L; ++l)
      for (int j = 0; j < d; ++j)
        c.residual[(static_cast<std::size_t>(p) * L + l) * d + j] = noise(rng) + (j == 0 ? shift[l] : 0.0) + (j == 1 ? 5.0 : 0.0);
  return c;
}

TEST(AblateDirections, MeansSeparationAndSelection) {
  std::mt19937 rng(11);
  const int L = 5, d = 16;
  const auto a = synthetic(200, L, d, {0.5, 4.0, 1.0, 8.0, 20.0}, rng);
  const auto b = synthetic(200, L, d, {0, 0, 0, 0, 0}, rng);
  const auto m = ab::layer_means(a, b);
  // Layer 4 has the largest shift but is in the last 20% of layers (excluded); then 3, 1.
  EXPECT_EQ(ab::best_separated_layers(m, 2), (std::vector<int>{3, 1}));
  EXPECT_GT(m.stats[1].separation, 3.0);
  const auto r = m.direction(1, false);
  EXPECT_GT(std::abs(r[0]), 0.95);
  // Projected: orthogonal to mu_B (which points along e_1).
  const auto rp = m.direction(1, true);
  EXPECT_NEAR(ab::dot(rp, m.mu_b[1]), 0.0, 1e-9);
  // Subspace from two layers whose directions are nearly parallel keeps rank <= 2, orthonormal.
  const auto q = ab::target_subspace(m, {1, 4}, 2, {true, true, 1e-6});
  ASSERT_FALSE(q.empty());
  for (const auto& v : q) EXPECT_NEAR(ab::dot(v, m.mu_b[2]), 0.0, 1e-6 * ab::norm(m.mu_b[2]));
  EXPECT_THROW(ab::best_separated_layers(m, 5), quench::InvalidArgument);
}

}  // namespace
