// quench/cli/bench_runner.cpp: `quench bench-runner MODEL`: the model runner alone (no HTTP, no
// scheduler) on one device: prefill throughput, time to first token, and greedy decode throughput
// at several batch sizes, each next to its physical bound:
//   decode bound  = (weight bytes + KV bytes read per step) / measured copy bandwidth
//   prefill bound = FLOPs / measured bf16 GEMM peak (2 · linear params · tokens + attention).
// Bandwidth and peak are measured on the spot (device-to-device copy; a large cuBLAS bf16 GEMM).
// --profile adds, per measurement, a table of device time per op kind from eager steps with an
// event between consecutive ops (CudaModelRunner::execute_profiled), and for decode a graph-mode
// table (CudaModelRunner::profile_graph): the replayed step's time, what each op kind removes from
// it when left out of the capture, that op kind alone, its launches, bytes and bandwidth bound,
// and the host time per step around the replay (wall per step minus the replayed graph).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/cpu/runner.h"
#include "cli/verb.h"
#include "core/error.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/weights.h"
#ifdef QUENCH_HAVE_CUDA
#include "backend/cuda/cuda_runner.h"
#include "backend/cuda/device_measure.h"
#include "backend/cuda/kernels.h"
#endif

namespace quench::cli {
namespace {

struct Options {
  std::string model;
  std::string device = "cuda";
  std::vector<int> batch_sizes{1, 16, 64};
  int context = 512;
  int decode_steps = 64;
  int prefill_len = 2048;
  int ttft_len = 512;
  std::string kv_dtype = "bf16";
  std::string out;
  bool no_graphs = false;
  bool profile = false;
  int profile_steps = 5;
  int profile_replays = 10;
  bool no_pdl = false;
  bool no_fp8_prefill = false;
  bool no_fused_decode_attention = false;
  bool fold_decode_store = false;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Parameters of every Linear (the tied LM head counted once as a matmul of vocab x hidden).
double linear_params(const ModelConfig& c) {
  double p = 0;
  for (const auto& l : c.layers) {
    const double q = double(l.num_heads) * l.head_dim, kv = double(l.num_kv_heads) * l.head_dim;
    p += c.hidden_size * (q + kv + (l.k_eq_v ? 0 : kv) + q) + 3.0 * c.hidden_size * c.intermediate_size;
  }
  return p + double(c.vocab_size) * c.hidden_size;
}

/// KV bytes read per decode step by one sequence at context `ctx` (window applied).
double kv_read_bytes(const ModelConfig& c, int ctx, int elem) {
  double b = 0;
  for (const auto& l : c.layers) {
    const int keys = l.sliding_window > 0 ? std::min(ctx, l.sliding_window) : ctx;
    b += 2.0 * keys * l.num_kv_heads * l.head_dim * elem;
  }
  return b;
}

/// Attention FLOPs of a causal prefill of n tokens (QK and PV, window applied).
double attention_flops(const ModelConfig& c, int n) {
  double f = 0;
  for (const auto& l : c.layers) {
    double pairs = 0;
    for (int i = 0; i < n; ++i) pairs += l.sliding_window > 0 ? std::min(i + 1, l.sliding_window) : i + 1;
    f += 4.0 * pairs * l.num_heads * l.head_dim;
  }
  return f;
}

/// The benchmark's KV-cache layout, sized for what its sequences hold (not for a serving engine):
/// sequence 0 also runs the prefill and TTFT prompts, the others only `context` prompt tokens plus
/// the decode steps. Full-attention group: every block of a sequence's life. Sliding-window group
/// (vLLM's sliding-window manager keeps only the blocks a query can still see): each sequence
/// cycles through a ring of R blocks, logical block b -> ring slot b mod R, with R = the blocks the
/// widest step of that sequence can touch: the window's keys before its first token plus its own
/// tokens, ceil((window - 1 + chunk) / block_size) + 1 (one more for a window that starts mid-
/// block), never more than the sequence's life. Any R consecutive logical blocks get distinct
/// slots, so every key a step writes or a query reads (window applied) has its own slot; entries
/// of blocks wholly before the window alias newer blocks and are never read (kernels.h,
/// paged_attention). Block 0 of each pool is left unused.
struct BenchKvLayout {
  int block_size = 16;
  int window = 0;                  ///< largest sliding window of the model (0: no sliding layers)
  int full_first = 0, full_rest = 0;        ///< full-group blocks of sequence 0 / of the others
  int ring_first = 0, ring_rest = 0;        ///< sliding-group ring of sequence 0 / of the others
  int sequences = 1;

  BenchKvLayout(const ModelConfig& c, int bs, int sequences_, int tokens_first, int tokens_rest, int chunk_first,
                int chunk_rest)
      : block_size(bs), sequences(sequences_) {
    for (const auto& l : c.layers)
      if (l.type == LayerType::kSliding) window = std::max(window, l.sliding_window);
    full_first = blocks(tokens_first);
    full_rest = blocks(tokens_rest);
    ring_first = ring(full_first, chunk_first);
    ring_rest = ring(full_rest, chunk_rest);
  }
  int blocks(int tokens) const { return (tokens + block_size - 1) / block_size; }
  int ring(int life_blocks, int chunk) const {
    return window > 0 ? std::min(life_blocks, blocks(window - 1 + chunk) + 1) : 0;
  }
  int num_blocks_full() const { return 1 + full_first + (sequences - 1) * full_rest; }
  int num_blocks_sliding() const { return window > 0 ? 1 + ring_first + (sequences - 1) * ring_rest : 0; }
  /// Block table of sequence s in the full-attention group.
  std::vector<int32_t> full_table(int s) const {
    std::vector<int32_t> t(static_cast<size_t>(s == 0 ? full_first : full_rest));
    std::iota(t.begin(), t.end(), s == 0 ? 1 : 1 + full_first + (s - 1) * full_rest);
    return t;
  }
  /// Block table of sequence s in the sliding-window group (ring slots; the full table's length).
  std::vector<int32_t> sliding_table(int s) const {
    std::vector<int32_t> t(static_cast<size_t>(s == 0 ? full_first : full_rest), -1);
    if (window == 0) return t;
    const int r = s == 0 ? ring_first : ring_rest, base = s == 0 ? 1 : 1 + ring_first + (s - 1) * ring_rest;
    for (size_t b = 0; b < t.size(); ++b) t[b] = base + static_cast<int>(b) % r;
    return t;
  }
};

/// Bytes one KV block takes over the layers of one group (K and V).
double kv_group_block_bytes(const ModelConfig& c, int bs, int elem, bool sliding) {
  double b = 0;
  for (const auto& l : c.layers)
    if ((l.type == LayerType::kSliding) == sliding) b += 2.0 * bs * l.num_kv_heads * l.head_dim * elem;
  return b;
}

#ifdef QUENCH_HAVE_CUDA
/// Prints the per-op device time of `prof` (ms per step and % of the profiled step) and returns
/// it as JSON.
nlohmann::json print_profile(const std::string& what, const cuda::StepProfile& prof) {
  const double total = prof.total_ms() / std::max(prof.steps, 1);
  std::printf("profile %s (eager, an event between ops, %d steps): %.3f ms/step\n", what.c_str(), prof.steps, total);
  std::printf("  %-22s %10s %7s\n", "op", "ms/step", "%step");
  nlohmann::json j = {{"what", what}, {"steps", prof.steps}, {"ms_per_step", total}};
  for (int i = 0; i < static_cast<int>(cuda::StepOp::kCount); ++i) {
    const double ms = prof.ms[i] / std::max(prof.steps, 1);
    const char* name = cuda::op_kind_name(static_cast<cuda::StepOp>(i));
    std::printf("  %-22s %10.4f %6.1f%%\n", name, ms, total > 0 ? 100.0 * ms / total : 0.0);
    j["ops"][name] = ms;
  }
  return j;
}

/// Prints the graph-mode profile `g` of a decode step (bounds at `bandwidth` bytes/s) and returns
/// it as JSON. See GraphProfile (cuda_runner.h) for what each column means.
nlohmann::json print_graph_profile(const std::string& what, const cuda::GraphProfile& g, double bandwidth) {
  std::printf("graph profile %s (%d rows, %d graph nodes, median of %d replays per variant):\n", what.c_str(), g.rows,
              g.total_nodes, g.replays);
  std::printf("  replayed step %.3f ms; real path %.3f ms per execute_greedy (host + upload + launch + copy + sync "
              "around the replay: %.3f ms, of which prepare %.3f ms)\n",
              g.full_ms, g.step_wall_ms, g.step_wall_ms - g.full_ms, g.prepare_ms);
  std::printf("  %-22s %6s %11s %7s %9s %9s %9s %7s\n", "op", "nodes", "removed ms", "%step", "alone ms", "MB/step",
              "bound ms", "%bound");
  nlohmann::json j = {{"what", what},           {"rows", g.rows},          {"graph_nodes", g.total_nodes},
                      {"replays", g.replays},   {"step_ms", g.full_ms},    {"step_wall_ms", g.step_wall_ms},
                      {"prepare_ms", g.prepare_ms}};
  double removed_sum = 0, bytes_sum = 0;
  for (int i = 0; i < cuda::GraphProfile::kOps; ++i) {
    const char* name = cuda::op_kind_name(static_cast<cuda::StepOp>(i));
    const double removed = g.removed_ms(i), bound = bandwidth > 0 ? g.bytes[i] / bandwidth * 1e3 : 0;
    removed_sum += removed;
    bytes_sum += g.bytes[i];
    std::printf("  %-22s %6d %11.4f %6.1f%% %9.4f %9.2f %9.4f %6.0f%%\n", name, g.nodes[i], removed,
                g.full_ms > 0 ? 100 * removed / g.full_ms : 0.0, g.alone_ms[i], g.bytes[i] / 1e6, bound,
                removed > 0 ? 100 * bound / removed : 0.0);
    j["ops"][name] = {{"nodes", g.nodes[i]}, {"removed_ms", removed}, {"alone_ms", g.alone_ms[i]},
                      {"bytes", g.bytes[i]}, {"bound_ms", bound}};
  }
  const double bound_all = bandwidth > 0 ? bytes_sum / bandwidth * 1e3 : 0;
  std::printf("  %-22s %6s %11.4f %6.1f%% %9s %9.2f %9.4f %6.0f%%   (sum of removed vs the step: the rest is "
              "overlap or shared gaps)\n",
              "sum", "", removed_sum, g.full_ms > 0 ? 100 * removed_sum / g.full_ms : 0.0, "", bytes_sum / 1e6,
              bound_all, g.full_ms > 0 ? 100 * bound_all / g.full_ms : 0.0);
  j["removed_sum_ms"] = removed_sum;
  j["bytes"] = bytes_sum;
  return j;
}
#endif

int run(const Options& o) {
  if (o.batch_sizes.empty()) throw InvalidArgument("--batch-sizes: give at least one batch size");
  for (int b : o.batch_sizes)
    if (b < 1) throw InvalidArgument(fmt::format("--batch-sizes: {} is not >= 1", b));
  if (o.context < 1) throw InvalidArgument(fmt::format("--context must be >= 1, got {}", o.context));
  if (o.decode_steps < 1) throw InvalidArgument(fmt::format("--decode-steps must be >= 1, got {}", o.decode_steps));
  if (o.prefill_len < 0 || o.ttft_len < 0) throw InvalidArgument("--prefill-len and --ttft-len must be >= 0");
  if (o.profile_steps < 1) throw InvalidArgument(fmt::format("--profile-steps must be >= 1, got {}", o.profile_steps));
  if (o.profile_replays < 1)
    throw InvalidArgument(fmt::format("--profile-replays must be >= 1, got {}", o.profile_replays));
  if (o.profile && o.device != "cuda") throw InvalidArgument("--profile needs --device cuda");
  std::shared_ptr<const Model> model = Model::load(o.model);
  const ModelConfig& cfg = model->config();
  const int bs = 16;
  const int max_batch = *std::max_element(o.batch_sizes.begin(), o.batch_sizes.end());
  // Tokens a decode sequence holds: its prompt, 3 warm-up + the timed steps, the profiled ones.
  const int decode_tokens = o.context + o.decode_steps + 4 + (o.profile ? o.profile_steps + 1 : 0) + 1;
  // Decode sequences prefill their context in chunks of at most the sliding window (as a chunked-
  // prefill engine would), so their sliding ring stays about two windows long at any context.
  int window = 0;
  for (const auto& l : cfg.layers)
    if (l.type == LayerType::kSliding) window = std::max(window, l.sliding_window);
  const int prefill_chunk = window > 0 ? std::min(o.context, window) : o.context;
  const BenchKvLayout layout(cfg, bs, max_batch, std::max({decode_tokens, o.prefill_len + 1, o.ttft_len + 1}),
                             decode_tokens, std::max({o.context, o.prefill_len, o.ttft_len}), prefill_chunk);
  KvCacheConfig kv;
  kv.block_size = bs;
  kv.num_blocks_full = layout.num_blocks_full();
  kv.num_blocks_sliding = layout.num_blocks_sliding();
  if (o.kv_dtype == "fp8" || o.kv_dtype == "fp8_e4m3") kv.dtype = KvCacheDtype::kFP8E4M3;
  else if (o.kv_dtype != "bf16") throw InvalidArgument("--kv-cache-dtype must be bf16 or fp8_e4m3, got " + o.kv_dtype);
  const int kv_elem = kv.dtype == KvCacheDtype::kFP8E4M3 ? 1 : 2;
  // What the KV cache took before this layout (both groups sized for max_batch sequences of the
  // longest prompt), for the memory line.
  const double kv_bytes_before =
      (std::max(decode_tokens, std::max(o.prefill_len, o.ttft_len) + 1) + bs - 1) / bs * double(max_batch) *
      (kv_group_block_bytes(cfg, bs, kv_elem, false) + kv_group_block_bytes(cfg, bs, kv_elem, true));

  std::unique_ptr<ModelRunner> runner;
  double bandwidth = 0, peak = 0;
  size_t weight_bytes = model->checkpoint().total_bytes();
  std::string device_name;
#ifdef QUENCH_HAVE_CUDA
  cuda::CudaModelRunner* cuda_runner = nullptr;
#endif
#ifdef QUENCH_HAVE_CUDA
  size_t used_before_runner = 0;
#endif
  if (o.device == "cuda") {
#ifdef QUENCH_HAVE_CUDA
    bandwidth = cuda::measure_copy_bandwidth();
    peak = cuda::measure_bf16_gemm_peak();
    size_t free_b = 0, total_b = 0;
    QUENCH_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    used_before_runner = total_b - free_b;  // CUDA context, libraries (the measurements freed their buffers)
    auto r = std::make_unique<cuda::CudaModelRunner>(model, kv);
    cuda_runner = r.get();
    if (o.no_graphs) r->set_use_cuda_graphs(false);
    if (o.no_fp8_prefill) r->set_fp8_prefill(false);
    if (o.fold_decode_store) r->set_fold_decode_store(true);
    cuda::set_programmatic_dependent_launch(!o.no_pdl);
    if (o.no_fused_decode_attention) cuda::set_decode_attention_fused(false);
    weight_bytes = r->weight_bytes();
    device_name = r->name();
    runner = std::move(r);
#else
    throw InvalidArgument("--device cuda: this quench was built without CUDA");
#endif
  } else if (o.device == "cpu") {
    runner = std::make_unique<CpuModelRunner>(model, kv);
    device_name = "cpu";
  } else {
    throw InvalidArgument("--device must be cuda or cpu, got " + o.device);
  }
  std::printf("bench-runner: %s on %s; weights %.2f GB resident; copy bandwidth %.0f GB/s; bf16 GEMM peak %.0f TFLOP/s\n",
              o.model.c_str(), device_name.c_str(), weight_bytes / 1e9, bandwidth / 1e9, peak / 1e12);

  std::mt19937 rng(7);
  std::uniform_int_distribution<int> tok(3, cfg.vocab_size - 1);
  auto greedy = [&](std::span<const SeqStep> steps, std::span<int32_t> out) {
#ifdef QUENCH_HAVE_CUDA
    if (cuda_runner) return cuda_runner->execute_greedy(steps, out);
#endif
    std::vector<float> logits(out.size() * static_cast<size_t>(cfg.vocab_size));
    runner->execute(steps, logits);
    for (size_t i = 0; i < out.size(); ++i) {
      const float* row = logits.data() + i * cfg.vocab_size;
      out[i] = static_cast<int32_t>(std::max_element(row, row + cfg.vocab_size) - row);
    }
  };
  nlohmann::json report = {{"model", o.model}, {"device", device_name}, {"weight_bytes", weight_bytes},
                           {"copy_bandwidth_Bps", bandwidth}, {"bf16_peak_flops", peak},
                           {"kv_cache_dtype", o.kv_dtype}, {"cuda_graphs", !o.no_graphs}, {"pdl", !o.no_pdl},
                           {"fp8_prefill", !o.no_fp8_prefill},
                           {"fused_decode_attention", !o.no_fused_decode_attention},
                           {"fold_decode_store", o.fold_decode_store}};
  const double lin = linear_params(cfg);
  nlohmann::json profiles = nlohmann::json::array(), graph_profiles = nlohmann::json::array();

  // Prefill of one long prompt, and TTFT of a shorter one (idle engine: one step each).
  auto prefill = [&](int n) {
    std::vector<int32_t> ids(n);
    for (auto& t : ids) t = tok(rng);
    const auto tab = layout.full_table(0), tab_sliding = layout.sliding_table(0);
    SeqStep s{ids, 0, tab, tab_sliding, true};
    std::vector<int32_t> out(1);
    greedy(std::span<const SeqStep>(&s, 1), out);  // warm-up
    const auto t0 = Clock::now();
    greedy(std::span<const SeqStep>(&s, 1), out);
    const double t = seconds_since(t0);
#ifdef QUENCH_HAVE_CUDA
    if (o.profile && cuda_runner) {
      cuda::StepProfile prof;
      for (int i = 0; i < o.profile_steps; ++i) cuda_runner->execute_profiled(std::span<const SeqStep>(&s, 1), out, prof);
      profiles.push_back(print_profile(fmt::format("prefill {} tokens", n), prof));
    }
#endif
    return t;
  };
  if (o.prefill_len > 0) {
    const double t = prefill(o.prefill_len);
    const double flops = 2.0 * lin * o.prefill_len + attention_flops(cfg, o.prefill_len);
    const double bound = peak > 0 ? flops / peak : 0;
    std::printf("prefill %d tokens: %.1f ms, %.0f tok/s (bound %.0f tok/s, %.0f%%)\n", o.prefill_len, t * 1e3,
                o.prefill_len / t, bound > 0 ? o.prefill_len / bound : 0, bound > 0 ? 100 * bound / t : 0);
    report["prefill"] = {{"tokens", o.prefill_len}, {"seconds", t}, {"tok_per_s", o.prefill_len / t},
                         {"bound_tok_per_s", bound > 0 ? o.prefill_len / bound : 0}};
  }
  if (o.ttft_len > 0) {
    const double t = prefill(o.ttft_len);
    std::printf("time to first token, %d-token prompt, idle: %.1f ms\n", o.ttft_len, t * 1e3);
    report["ttft"] = {{"prompt_tokens", o.ttft_len}, {"seconds", t}};
  }

  // Decode at each batch size: prefill `context` tokens per sequence, then timed greedy steps.
  nlohmann::json dec = nlohmann::json::array();
  for (int B : o.batch_sizes) {
    std::vector<std::vector<int32_t>> ids(B), tab(B), tab_sliding(B);
    for (int b = 0; b < B; ++b) {
      ids[b].resize(o.context + o.decode_steps + 8 + (o.profile ? o.profile_steps + 1 : 0));
      for (auto& t : ids[b]) t = tok(rng);
      tab[b] = layout.full_table(b);
      tab_sliding[b] = layout.sliding_table(b);
    }
    for (int b = 0; b < B; ++b) {  // prefill one by one (bounded memory), in chunks of <= prefill_chunk
      for (int start = 0; start < o.context; start += prefill_chunk) {
        const int len = std::min(prefill_chunk, o.context - start);
        SeqStep s{std::span<const int32_t>(ids[b].data() + start, len), start, tab[b], tab_sliding[b], true};
        std::vector<int32_t> out(1);
        greedy(std::span<const SeqStep>(&s, 1), out);
      }
    }
    std::vector<SeqStep> steps(B);
    std::vector<int32_t> out(B);
    auto step_at = [&](int p) {
      for (int b = 0; b < B; ++b)
        steps[b] = SeqStep{std::span<const int32_t>(ids[b].data() + p, 1), p, tab[b], tab_sliding[b], true};
      greedy(steps, out);
    };
    int p = o.context;
    for (int w = 0; w < 3; ++w) step_at(p++);  // warm-up (graph capture)
    const auto t0 = Clock::now();
    for (int i = 0; i < o.decode_steps; ++i) step_at(p++);
    const double t = seconds_since(t0);
    const double per_step = t / o.decode_steps;
    const double bytes = weight_bytes + B * kv_read_bytes(cfg, o.context + o.decode_steps / 2, kv_elem);
    const double bound_step = bandwidth > 0 ? bytes / bandwidth : 0;
    const double tps = B / per_step;
    std::printf("decode batch %3d at context %d: %.3f ms/step, %.0f tok/s (bound %.0f tok/s, %.0f%%)\n", B,
                o.context, per_step * 1e3, tps, bound_step > 0 ? B / bound_step : 0,
                bound_step > 0 ? 100 * bound_step / per_step : 0);
    dec.push_back({{"batch", B}, {"context", o.context}, {"ms_per_step", per_step * 1e3}, {"tok_per_s", tps},
                   {"bytes_per_step", bytes}, {"bound_tok_per_s", bound_step > 0 ? B / bound_step : 0}});
#ifdef QUENCH_HAVE_CUDA
    if (o.profile && cuda_runner) {
      cuda::StepProfile prof;
      for (int i = 0; i < o.profile_steps; ++i) {
        for (int b = 0; b < B; ++b)
          steps[b] = SeqStep{std::span<const int32_t>(ids[b].data() + p, 1), p, tab[b], tab_sliding[b], true};
        ++p;
        cuda_runner->execute_profiled(steps, out, prof);
      }
      profiles.push_back(print_profile(fmt::format("decode batch {} at context {}", B, o.context), prof));
      // Graph mode on the next position (its KV slot is written by the profile's real steps).
      for (int b = 0; b < B; ++b)
        steps[b] = SeqStep{std::span<const int32_t>(ids[b].data() + p, 1), p, tab[b], tab_sliding[b], true};
      ++p;
      const cuda::GraphProfile g = cuda_runner->profile_graph(steps, o.profile_replays);
      graph_profiles.push_back(
          print_graph_profile(fmt::format("decode batch {} at context {}", B, o.context), g, bandwidth));
    }
#endif
  }
  report["decode"] = dec;
  if (o.profile) {
    report["profile"] = profiles;
    report["graph_profile"] = graph_profiles;
  }
#ifdef QUENCH_HAVE_CUDA
  if (cuda_runner) {
    // Device memory in use at the end (after the largest batch): what was in use before the
    // runner (CUDA context, libraries), weights, the two KV groups, the step buffers, and the rest
    // (cuBLAS and LinearExecutor workspaces, captured graphs, the sampler, allocation rounding).
    size_t free_b = 0, total_b = 0;
    QUENCH_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const double used = static_cast<double>(total_b - free_b), kvb = static_cast<double>(cuda_runner->kv_cache_bytes());
    const double kv_full = static_cast<double>(cuda_runner->kv_cache_bytes(false)),
                 kv_sliding = static_cast<double>(cuda_runner->kv_cache_bytes(true)),
                 steps_b = static_cast<double>(cuda_runner->step_buffer_bytes()), before = double(used_before_runner);
    const double other = used - before - double(weight_bytes) - kvb - steps_b;
    std::printf("GPU memory in use: %.2f GB = before the runner %.2f GB (CUDA context, libraries) + weights %.2f GB + "
                "KV cache %.2f GB + step buffers %.2f GB + other %.2f GB (workspaces, graphs, sampler)\n",
                used / 1e9, before / 1e9, weight_bytes / 1e9, kvb / 1e9, steps_b / 1e9, other / 1e9);
    std::printf("  KV cache: full-attention group %.2f GB (%d blocks of %d tokens), sliding-window group %.2f GB "
                "(%d blocks: rings of %d / %d blocks per sequence for window %d); sized as before (both groups for "
                "%d sequences of the longest prompt): %.2f GB\n",
                kv_full / 1e9, kv.num_blocks_full, bs, kv_sliding / 1e9, kv.num_blocks_sliding, layout.ring_first,
                layout.ring_rest, layout.window, max_batch, kv_bytes_before / 1e9);
    report["gpu_memory_bytes"] = {{"in_use", used},
                                  {"before_runner", before},
                                  {"weights", weight_bytes},
                                  {"kv_cache", kvb},
                                  {"kv_cache_full_group", kv_full},
                                  {"kv_cache_sliding_group", kv_sliding},
                                  {"kv_cache_sized_as_before", kv_bytes_before},
                                  {"step_buffers", steps_b},
                                  {"other", other},
                                  {"kv_blocks_full", kv.num_blocks_full},
                                  {"kv_blocks_sliding", kv.num_blocks_sliding}};
    report["fp8_prefill_effective"] = cuda_runner->fp8_prefill();  // off when cuBLASLt lacked the kernel
  }
#endif
  if (!o.out.empty()) write_file_atomic(o.out, report.dump(2) + "\n");
  return 0;
}

const bool registered = register_verb(
    {"bench-runner", "Time the model runner alone (prefill, TTFT, decode) against the physical bounds",
     [](CLI::App& app) {
       auto o = std::make_shared<Options>();
       app.add_option("model", o->model, "checkpoint directory")->required();
       app.add_option("--device", o->device, "cuda or cpu")->capture_default_str();
       app.add_option("--batch-sizes", o->batch_sizes, "decode batch sizes")->delimiter(',')->capture_default_str();
       app.add_option("--context", o->context, "prompt tokens per sequence before decoding")->capture_default_str();
       app.add_option("--decode-steps", o->decode_steps, "timed decode steps")->capture_default_str();
       app.add_option("--prefill-len", o->prefill_len, "tokens of the timed prefill (0 = skip)")->capture_default_str();
       app.add_option("--ttft-len", o->ttft_len, "prompt tokens of the TTFT measurement (0 = skip)")->capture_default_str();
       app.add_option("--kv-cache-dtype", o->kv_dtype, "bf16 or fp8_e4m3")->capture_default_str();
       app.add_flag("--no-cuda-graphs", o->no_graphs, "launch decode steps without CUDA graphs");
       app.add_flag("--profile", o->profile,
                    "after each measurement, run a few eager steps with device events between ops and print the "
                    "ms per step of each op kind (embed, projections, attention, norms, MLP, LM head, argmax); for "
                    "decode also the graph-mode table: what each op kind removes from the replayed step when left "
                    "out of the capture, alone, its bytes and bound, and the host time around each replay");
       app.add_option("--profile-steps", o->profile_steps, "steps per --profile table")->capture_default_str();
       app.add_option("--profile-replays", o->profile_replays,
                      "replays per graph variant of the graph-mode --profile table (decode)")
           ->capture_default_str();
       app.add_flag("--no-pdl", o->no_pdl,
                    "launch the norm/embedding/argmax kernels without Programmatic Dependent Launch (on by "
                    "default: it overlaps their launch with the previous kernel's tail)");
       app.add_flag("--no-fp8-prefill", o->no_fp8_prefill,
                    "FP8 checkpoints: run prefill GEMMs by dequantizing W to bf16 (cuBLAS bf16) instead of FP8 "
                    "activations x FP8 weights on the FP8 tensor cores (cuBLASLt, the default)");
       app.add_flag("--no-fused-decode-attention", o->no_fused_decode_attention,
                    "decode steps: q/k norms + RoPE + KV store and paged attention as separate launches (split "
                    "partials + combine) instead of the single-launch cluster kernels");
       app.add_flag("--fold-decode-store", o->fold_decode_store,
                    "decode steps: fold the q/k norms, RoPE and KV store into the single-launch attention kernel "
                    "(one launch per layer instead of two; off by default)");
       app.add_option("--out", o->out, "write the results as JSON");
       return [o] { return run(*o); };
     }});

}  // namespace
}  // namespace quench::cli
