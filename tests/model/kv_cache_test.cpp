// tests/model/kv_cache_test.cpp: the CPU KV-cache storage: dtype round trips (bf16 RNE, fp8 E4M3
// with per-layer scales, saturating), block/slot addressing, contiguous cache truncation.
#include <gtest/gtest.h>

#include "backend/cpu/contiguous_kv_cache.h"
#include "backend/cpu/paged_kv_cache.h"
#include "core/error.h"
#include "core/numeric.h"
#include "io/model_config.h"

namespace quench {
namespace {

TEST(PagedKvPool, Fp8UsesPerLayerScalesAndSaturates) {
  // Two layers in the group: kv_dim 4 (k_scale 2, v_scale 0.5) and kv_dim 2 (scales 1).
  PagedKvPool pool("sliding", {4, 2}, {2.0f, 1.0f}, {0.5f, 1.0f}, 3, 2, KvCacheDtype::kFP8E4M3);
  const float k[4] = {3.0f, -0.75f, 1000.0f, 0.0f}, v[4] = {0.25f, 1.0f, -3.0f, 224.0f};
  pool.write(0, 2, 1, k, v);
  float rk[4], rv[4];
  pool.read(0, 2, 1, rk, rv);
  EXPECT_EQ(rk[0], 3.0f);             // 3 / 2 = 1.5 is exact in E4M3
  EXPECT_EQ(rk[1], -0.75f);
  EXPECT_EQ(rk[2], 448.0f * 2.0f);    // 1000 / 2 = 500 saturates to 448
  EXPECT_EQ(rk[3], 0.0f);
  EXPECT_EQ(rv[0], 0.25f);
  EXPECT_EQ(rv[2], -3.0f);
  EXPECT_EQ(rv[3], 224.0f);           // 224 / 0.5 = 448
  // The other layer and slot are independent.
  const float k2[2] = {1.1f, -2.2f}, v2[2] = {0.3f, 0.4f};
  pool.write(1, 2, 1, k2, v2);
  pool.read(0, 2, 1, rk, rv);
  EXPECT_EQ(rk[0], 3.0f);
  float r2k[2], r2v[2];
  pool.read(1, 2, 1, r2k, r2v);
  EXPECT_EQ(r2k[0], fp8e4m3_to_f32(f32_to_fp8e4m3(1.1f, true)));
  EXPECT_THROW(pool.write(0, 3, 0, k, v), InvalidArgument);
  EXPECT_THROW(pool.read(0, -1, 0, rk, rv), InvalidArgument);
}

TEST(PagedKvPool, Bf16RoundsToNearestEvenAndFp32IsExact) {
  PagedKvPool bf("full", {3}, {1.0f}, {1.0f}, 2, 4, KvCacheDtype::kBF16);
  const float k[3] = {1.00390625f, 3.14159265f, -1e-3f}, v[3] = {1.0f + 1.0f / 128, 65504.0f, 0.1f};
  bf.write(0, 1, 3, k, v);
  float rk[3], rv[3];
  bf.read(0, 1, 3, rk, rv);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(rk[i], round_bf16(k[i]));
    EXPECT_EQ(rv[i], round_bf16(v[i]));
  }
  EXPECT_EQ(bf.bytes(), size_t(2) * 2 * 4 * 3 * 2);  // blocks x (k,v) x slots x dim x 2 bytes
  PagedKvPool f32("full", {3}, {1.0f}, {1.0f}, 1, 4, KvCacheDtype::kFP32);
  f32.write(0, 0, 0, k, v);
  f32.read(0, 0, 0, rk, rv);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rk[i], k[i]);
}

TEST(ContiguousKvCache, AppendReadTruncate) {
  ModelConfig cfg;
  cfg.layers.resize(2);
  cfg.layers[0].num_kv_heads = 2;
  cfg.layers[0].head_dim = 2;
  cfg.layers[1].num_kv_heads = 1;
  cfg.layers[1].head_dim = 3;
  ContiguousKvCache c(cfg);
  std::vector<float> k0(3 * 4), v0(3 * 4), k1(3 * 3), v1(3 * 3);
  for (size_t i = 0; i < k0.size(); ++i) k0[i] = float(i), v0[i] = -float(i);
  for (size_t i = 0; i < k1.size(); ++i) k1[i] = 100.0f + float(i), v1[i] = 200.0f + float(i);
  c.write(0, 0, 3, k0.data(), v0.data());
  c.write(1, 0, 3, k1.data(), v1.data());
  EXPECT_EQ(c.length(), 3);
  float rk[4], rv[4];
  c.read(0, 2, 1, rk, rv);
  EXPECT_EQ(rk[0], 8.0f);
  EXPECT_EQ(rv[3], -11.0f);
  EXPECT_THROW(c.read(0, 2, 2, rk, rv), InvalidArgument);
  EXPECT_THROW(c.write(0, 5, 1, k0.data(), v0.data()), InvalidArgument);  // gap
  c.truncate(1);
  EXPECT_EQ(c.length(), 1);
  EXPECT_THROW(c.truncate(2), InvalidArgument);
  c.clear();
  EXPECT_EQ(c.length(), 0);
}

}  // namespace
}  // namespace quench
