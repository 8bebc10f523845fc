// quench/eval/rng.h: a small portable seeded generator (identical streams on every platform, unlike
// std::uniform_int_distribution), for sampling and bootstrap resampling.
#pragma once

#include <cstdint>
#include <string_view>

namespace quench::eval {

/// splitmix64 (Steele, Lea, Flood 2014; the seeding generator of xoshiro, prng.di.unimi.it).
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias < n / 2^64).
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

 private:
  std::uint64_t state_;
};

/// FNV-1a 64-bit hash of a string (to derive per-subject seeds).
inline std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace quench::eval
