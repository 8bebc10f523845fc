// quench/cli/serve.cpp: `quench serve MODEL_DIR`: the OpenAI-compatible HTTP server (flags mirror `vllm serve`).
//
// Startup: load the model, start the engine loop, bind, then serve. SIGTERM / SIGINT: new
// generation requests get 503, running ones get --shutdown-timeout seconds to finish, the rest are
// aborted (finish_reason "abort"), the listener closes and the process exits 0.
#include <csignal>
#include <filesystem>
#include <cstdio>
#include <pthread.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli/verb.h"
#include "core/error.h"
#include "core/log.h"
#include "server/api_server.h"
#include "server/device_runner.h"
#include "server/engine_loader.h"
#include "server/serving_context.h"

namespace {

struct ServeOptions {
  std::string model_dir;
  quench::server::ServerConfig server;
  quench::server::EngineLoadOptions load;
  std::string api_key;
  std::string served_model_name;
  bool prefix_caching = true;
  bool chunked_prefill = true;
  double gpu_memory_utilization = 0.9;
};

int run_serve(ServeOptions& o) {
  using namespace quench;
  // Block the stop signals in every thread (those created below inherit the mask); this thread
  // receives them with sigwait.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

  // stdout carries only the listening line: logs (request lines included) go to stderr.
  quench::log();
  spdlog::set_default_logger(spdlog::get("quench"));
  if (!o.api_key.empty()) o.server.api_keys.push_back(o.api_key);
  if (!o.served_model_name.empty()) o.server.served_model_names.push_back(o.served_model_name);
  o.load.engine.enable_prefix_caching = o.prefix_caching;
  o.load.engine.enable_chunked_prefill = o.chunked_prefill;
  o.server.model_root = o.model_dir;
  server::configure_device(o.load, o.load.device, o.gpu_memory_utilization, o.model_dir);

  auto engine = server::load_engine(o.model_dir, o.load);
  engine->start();
  server::ApiServer api(*engine, o.server);
  int port = api.bind();
  std::thread http([&api] { api.listen(); });
  // One stable line on stdout for scripts (scripts/demo.sh reads the port from it with --port 0).
  std::printf("quench serve: listening on http://%s:%d (model '%s', max_model_len %d)\n", o.server.host.c_str(), port,
              api.context().served_name().c_str(), engine->max_model_len());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_set, &sig);
  spdlog::info("quench serve: signal {} received; finishing running requests (up to {:.0f} s)", sig,
               o.server.shutdown_grace_s);
  int left = api.drain(o.server.shutdown_grace_s);
  if (left > 0) spdlog::warn("quench serve: aborting {} request(s) still running", left);
  engine->shutdown(/*abort_running=*/true);
  api.drain(2.0);  // aborted streams write their last chunk
  api.stop();
  http.join();
  spdlog::info("quench serve: stopped");
  return 0;
}

const bool registered = quench::cli::register_verb(
    {"serve", "OpenAI-compatible HTTP server (vllm serve drop-in)", [](CLI::App& app) {
       auto o = std::make_shared<ServeOptions>();
       app.add_option("model", o->model_dir, "Model directory (config.json, safetensors, tokenizer.json)")
           ->required()
           ->check(CLI::ExistingDirectory);
       app.add_option("--host", o->server.host,
                      "Bind address (default 127.0.0.1, loopback only; vLLM's default is all interfaces: pass 0.0.0.0)");
       app.add_option("--port", o->server.port, "Port (0 = any free port)")->check(CLI::Range(0, 65535));
       app.add_option("--served-model-name", o->served_model_name,
                      "Model name in the API (default: the model directory's name)");
       app.add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' on /v1 routes")
           ->envname("QUENCH_API_KEY");
       app.add_option("--max-model-len", o->load.engine.max_model_len, "Context length (prompt + output), 0 = model max");
       app.add_option("--max-num-seqs", o->load.engine.max_num_seqs, "Sequences in the running batch at most");
       app.add_option("--max-num-batched-tokens", o->load.engine.max_num_batched_tokens, "Token budget per engine step");
       app.add_option("--kv-cache-dtype", o->load.kv_cache_dtype, "auto | bf16 | fp8 | fp8_e4m3 | fp32");
       app.add_option("--num-kv-blocks", o->load.num_kv_blocks, "KV-cache blocks per group (0 = automatic)");
       app.add_option("--block-size", o->load.block_size, "Tokens per KV-cache block");
       app.add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", o->prefix_caching,
                    "Reuse KV blocks of shared prompt prefixes (default on)");
       app.add_flag("--enable-chunked-prefill,!--no-enable-chunked-prefill", o->chunked_prefill,
                    "Split long prompts across steps (default on)");
       app.add_option("--gpu-memory-utilization", o->gpu_memory_utilization,
                      "Fraction of GPU memory to use (accepted for vLLM compatibility; used by the CUDA backend)");
       app.add_option("--device", o->load.device, "cpu (cuda when built with the CUDA backend)");
       app.add_option("--seed", o->load.engine.seed, "Seed of requests that set none");
       app.add_flag("--log-prompts", o->server.log_prompts, "Include prompt text in the per-request log line");
       app.add_flag("!--no-device-sampling", o->load.engine.device_sampling,
                    "Sample on the host from copied logits even when the runner can sample on the GPU");
       app.add_option("--max-request-body-bytes", o->server.max_body_bytes, "Larger request bodies get 413");
       app.add_option("--shutdown-timeout", o->server.shutdown_grace_s,
                      "Seconds running requests get to finish after SIGTERM before they are aborted");
       return [o] { return run_serve(*o); };
     }});

}  // namespace
