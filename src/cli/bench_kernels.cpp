// quench/cli/bench_kernels.cpp: `quench bench-kernels`: every registered kernel case (see
// kernel_bench.h) timed on the GPU and printed next to its bound, max(bytes / measured copy
// bandwidth, FLOPs / measured bf16 peak), with the % reached.
#include <algorithm>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/verb.h"
#include "core/error.h"
#include "io/safetensors.h"  // write_file_atomic
#ifdef QUENCH_HAVE_CUDA
#include "backend/cuda/cuda_runner.h"     // require_cuda_device
#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/device_measure.h"
#include "cli/kernel_bench.h"
#endif

namespace quench::cli {

#ifdef QUENCH_HAVE_CUDA
namespace {
std::vector<std::pair<std::string, KernelBenchFn>>& registry() {
  static std::vector<std::pair<std::string, KernelBenchFn>> r;
  return r;
}
}  // namespace

bool register_kernel_bench(std::string group, KernelBenchFn fn) {
  registry().emplace_back(std::move(group), std::move(fn));
  return true;
}

const std::vector<std::pair<std::string, KernelBenchFn>>& kernel_benches() { return registry(); }

double median_kernel_us(const std::function<void()>& launch, const KernelBenchEnv& env) {
  // Launches are timed back to back, not one per event pair: a lone launch between two events on
  // an idle GPU also measures the host's launch latency (~5 us on the H200 host, seen in run 1),
  // which a decode step replayed from a CUDA graph does not pay. Preferred: `batch` launches
  // captured into one graph, replayed between two events (what the runner does); when capture
  // fails (a launcher that cannot be captured), the same launches enqueued back to back. The
  // figure is the median over 7 repetitions of (elapsed / batch).
  for (int i = 0; i < 3; ++i) launch();
  QUENCH_CUDA_CHECK(cudaStreamSynchronize(env.stream));
  const int batch = std::max(env.iters, 1);
  cudaGraphExec_t exec = nullptr;
  {
    cudaGraph_t graph = nullptr;
    if (cudaStreamBeginCapture(env.stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
      bool ok = true;
      try {
        for (int i = 0; i < batch; ++i) launch();
      } catch (...) {
        ok = false;
      }
      ok = cudaStreamEndCapture(env.stream, &graph) == cudaSuccess && ok && graph;
      if (ok) ok = cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
      if (graph) cudaGraphDestroy(graph);
      if (!ok) exec = nullptr;
    }
    cudaGetLastError();  // clear a failed capture's error
  }
  cudaEvent_t a, b;
  QUENCH_CUDA_CHECK(cudaEventCreate(&a));
  QUENCH_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> us(7);
  for (float& u : us) {
    QUENCH_CUDA_CHECK(cudaEventRecord(a, env.stream));
    if (exec) {
      QUENCH_CUDA_CHECK(cudaGraphLaunch(exec, env.stream));
    } else {
      for (int i = 0; i < batch; ++i) launch();
    }
    QUENCH_CUDA_CHECK(cudaEventRecord(b, env.stream));
    QUENCH_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    QUENCH_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    u = 1000.0f * ms / batch;
  }
  if (exec) cudaGraphExecDestroy(exec);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return us[us.size() / 2];
}
#endif

namespace {

struct Options {
  std::string filter = ".*";
  int iters = 50;
  std::string out;
};

int run(const Options& o) {
  std::regex re;
  try {
    re = std::regex(o.filter);
  } catch (const std::regex_error& e) {
    throw InvalidArgument(fmt::format("--filter '{}': not a valid regular expression ({})", o.filter, e.what()));
  }
#ifndef QUENCH_HAVE_CUDA
  (void)re;
  throw UnsupportedError("bench-kernels: this build has no CUDA backend");
#else
  const int dev = cuda::require_cuda_device();
  cudaDeviceProp prop{};
  QUENCH_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  KernelBenchEnv env;
  QUENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&env.stream, cudaStreamNonBlocking));
  env.bandwidth = cuda::measure_copy_bandwidth();
  env.bf16_peak = cuda::measure_bf16_gemm_peak();
  env.l2_bytes = static_cast<size_t>(prop.l2CacheSize);
  env.iters = o.iters;
  fmt::print("bench-kernels on {} ({} SMs, L2 {} MB): copy bandwidth {:.0f} GB/s, bf16 GEMM {:.0f} TFLOP/s\n",
             prop.name, prop.multiProcessorCount, env.l2_bytes >> 20, env.bandwidth / 1e9, env.bf16_peak / 1e12);
  fmt::print("{:<10} {:<48} {:>10} {:>10} {:>7}  {}\n", "group", "case", "time us", "bound us", "%bound", "achieved");
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const auto& [group, fn] : kernel_benches()) {
    if (!std::regex_search(group, re)) continue;
    for (const KernelCase& c : fn(env)) {
      const double bound_us = 1e6 * std::max(c.bytes / env.bandwidth, c.flops / env.bf16_peak);
      const bool mem = c.bytes / env.bandwidth >= c.flops / env.bf16_peak;
      const std::string achieved = mem ? fmt::format("{:.0f} GB/s", c.bytes / (c.us * 1e-6) / 1e9)
                                       : fmt::format("{:.0f} TFLOP/s", c.flops / (c.us * 1e-6) / 1e12);
      fmt::print("{:<10} {:<48} {:>10.2f} {:>10.2f} {:>6.0f}%  {}\n", c.group, c.name, c.us, bound_us,
                 100.0 * bound_us / c.us, achieved);
      all.push_back({{"group", c.group}, {"case", c.name}, {"us", c.us}, {"bound_us", bound_us},
                     {"bytes", c.bytes}, {"flops", c.flops}});
    }
  }
  cudaStreamDestroy(env.stream);
  if (!o.out.empty()) {
    nlohmann::ordered_json j = {{"device", prop.name}, {"bandwidth_bytes_per_s", env.bandwidth},
                                {"bf16_flops_per_s", env.bf16_peak}, {"cases", all}};
    write_file_atomic(o.out, j.dump(2) + "\n");
  }
  return 0;
#endif
}

const bool registered = register_verb(
    {"bench-kernels", "Time single GPU kernels on the 12B shapes against their bandwidth/FLOP bound",
     [](CLI::App& app) -> VerbAction {
       auto o = std::make_shared<Options>();
       app.add_option("--filter", o->filter, "regular expression on the case group (gemv, attention, ...)");
       app.add_option("--iters", o->iters, "timed launches per case")->check(CLI::Range(1, 100000));
       app.add_option("--out", o->out, "write the results as JSON");
       return [o] { return run(*o); };
     }});

}  // namespace
}  // namespace quench::cli
