// libFuzzer target for parse_safetensors_header (built only with clang; see CMakeLists.txt).
//
// Input layout: the first 8 bytes (little-endian, reduced mod 2^32) give the data-region size,
// the rest is the header JSON. The parser must either return views that satisfy every invariant
// the mmap reader relies on, or throw quench::FormatError; anything else aborts. The same entry
// point runs under GoogleTest on deterministic mutations (tests/io/safetensors_fuzz_test.cpp).
//
// Run locally (clang 14 + libclang-rt-14-dev), instrumenting the parser itself, from the repo root:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc -Itests
//     tests/fuzz/safetensors_header_fuzz.cpp src/io/safetensors.cpp src/io/text_file.cpp
//     src/core/dtype.cpp src/core/tensor.cpp src/core/numeric.cpp -o /tmp/fuzz
//   /tmp/fuzz -max_total_time=60 CORPUS_DIR

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

namespace quench::fuzz {

/// Runs the parser on one input; returns true if it parsed, false on FormatError; aborts on any
/// other exception or on a violated invariant (offsets inside the data region, sizes consistent,
/// ranges disjoint).
inline bool check_safetensors_header(const uint8_t* data, std::size_t size) {
  if (size < 8) return false;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  const std::size_t data_size = static_cast<std::size_t>(n & 0xffffffffu);
  const std::string_view header(reinterpret_cast<const char*>(data + 8), size - 8);
  std::map<std::string, TensorView> tensors;
  try {
    std::map<std::string, std::string> meta;
    tensors = parse_safetensors_header(header, data_size, "fuzz.safetensors", &meta);
  } catch (const FormatError&) {
    return false;
  } catch (...) {
    std::abort();  // only FormatError may escape
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, t] : tensors) {
    if (name != t.name) std::abort();
    const uint64_t begin = reinterpret_cast<uintptr_t>(t.data);
    uint64_t bytes = dtype_size(t.dtype);
    for (int64_t d : t.shape) {
      if (d < 0) std::abort();
      bytes *= static_cast<uint64_t>(d);
    }
    if (bytes != t.nbytes || begin + t.nbytes > data_size || begin + t.nbytes < begin) std::abort();
    if (t.nbytes) ranges.emplace_back(begin, begin + t.nbytes);
  }
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    for (std::size_t j = i + 1; j < ranges.size(); ++j) {
      if (ranges[i].first < ranges[j].second && ranges[j].first < ranges[i].second) std::abort();
    }
  }
  return true;
}

}  // namespace quench::fuzz

#ifndef QUENCH_FUZZ_NO_MAIN
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  quench::fuzz::check_safetensors_header(data, size);
  return 0;
}
#endif
