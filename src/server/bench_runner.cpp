// quench/server/bench_runner.cpp: HTTP and in-process load generation.
#include "server/bench_runner.h"

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "server/text_io.h"
#include "tokenizer/tokenizer.h"

namespace quench::server {
namespace {

using Clock = std::chrono::steady_clock;

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

const char* const kWords[] = {
    "time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child", "world", "school",
    "state", "family", "student", "group", "country", "problem", "hand", "part", "place", "case", "week",
    "company", "system", "program", "question", "work", "government", "number", "night", "point", "home",
    "water", "room", "mother", "area", "money", "story", "fact", "month", "lot", "right", "study", "book",
    "eye", "job", "word", "business", "issue", "side", "kind", "head", "house", "service", "friend",
    "father", "power", "hour", "game", "line", "end", "member", "law", "car", "city", "community", "name"};

int draw_len(std::mt19937_64& rng, int len, double ratio) {
  if (ratio <= 0) return len;
  int lo = std::max(1, static_cast<int>(len * (1.0 - ratio)));
  int hi = std::max(lo, static_cast<int>(len * (1.0 + ratio)));
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

void validate(const BenchConfig& c) {
  if (c.base_url.empty() == c.model_dir.empty())
    throw InvalidArgument("quench bench: give exactly one of --base-url (HTTP) or --model (in-process)");
  if (c.num_prompts < 1) throw InvalidArgument(fmt::format("--num-prompts must be >= 1, got {}", c.num_prompts));
  if (c.concurrency < 1) throw InvalidArgument(fmt::format("--concurrency must be >= 1, got {}", c.concurrency));
  if (c.input_len < 1) throw InvalidArgument(fmt::format("--input-len must be >= 1, got {}", c.input_len));
  if (c.output_len < 1) throw InvalidArgument(fmt::format("--output-len must be >= 1, got {}", c.output_len));
  if (c.random_range_ratio < 0 || c.random_range_ratio >= 1)
    throw InvalidArgument(fmt::format("--random-range-ratio must be in [0, 1), got {}", c.random_range_ratio));
  if (c.endpoint != "chat" && c.endpoint != "completions")
    throw InvalidArgument(fmt::format("--endpoint must be 'chat' or 'completions', got '{}'", c.endpoint));
}

/// Runs `n` jobs on `threads` workers; job(i) fills sample i.
template <typename Job>
double run_pool(int n, int threads, std::vector<RequestSample>& samples, Job job) {
  samples.assign(n, {});
  std::atomic<int> next{0};
  auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int w = 0; w < std::min(threads, n); ++w)
    pool.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < n;) samples[i] = job(i);
    });
  for (auto& t : pool) t.join();
  return secs(Clock::now() - t0);
}

// ---- HTTP ------------------------------------------------------------------------------------

std::unique_ptr<httplib::Client> make_client(const BenchConfig& c) {
  auto cl = std::make_unique<httplib::Client>(c.base_url);
  cl->set_connection_timeout(10, 0);
  cl->set_read_timeout(static_cast<time_t>(c.timeout_s), 0);
  cl->set_write_timeout(30, 0);
  if (!c.api_key.empty()) cl->set_bearer_token_auth(c.api_key);
  return cl;
}

std::string discover_model(const BenchConfig& c) {
  auto cl = make_client(c);
  auto r = cl->Get("/v1/models");
  if (!r) throw IoError(fmt::format("--base-url {}: cannot reach GET /v1/models ({})", c.base_url, httplib::to_string(r.error())));
  if (r->status != 200) throw IoError(fmt::format("--base-url {}: GET /v1/models returned {}: {}", c.base_url, r->status, r->body));
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.contains("data") || j["data"].empty() || !j["data"][0].contains("id"))
    throw FormatError(fmt::format("--base-url {}: GET /v1/models: no model id in the reply", c.base_url));
  return j["data"][0]["id"].get<std::string>();
}

RequestSample http_request(const BenchConfig& c, httplib::Client& cl, const std::string& model, const BenchPrompt& p) {
  RequestSample s;
  nlohmann::json body = {{"model", model}, {"max_tokens", p.output_len}, {"temperature", c.temperature},
                         {"ignore_eos", true}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
  bool chat = c.endpoint == "chat";
  if (chat) body["messages"] = {{{"role", "user"}, {"content", p.text}}};
  else body["prompt"] = p.text;
  std::string buf;
  std::vector<Clock::time_point> token_times;
  std::string stream_error;
  auto t0 = Clock::now();
  httplib::Request req;
  req.method = "POST";
  req.path = chat ? "/v1/chat/completions" : "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buf.append(data, len);
    size_t end;
    while ((end = buf.find("\n\n")) != std::string::npos) {
      std::string ev = buf.substr(0, end);
      buf.erase(0, end + 2);
      if (ev.rfind("data: ", 0) != 0) continue;
      std::string payload = ev.substr(6);
      if (payload == "[DONE]") continue;
      auto j = nlohmann::json::parse(payload, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("error")) {
        stream_error = j["error"].is_object() ? j["error"].value("message", payload) : payload;
        continue;
      }
      if (j.contains("usage") && j["usage"].is_object()) {
        s.prompt_tokens = j["usage"].value("prompt_tokens", 0);
        s.output_tokens = j["usage"].value("completion_tokens", 0);
      }
      if (!j.contains("choices")) continue;
      for (const auto& ch : j["choices"]) {
        bool has_text = false;
        if (chat && ch.contains("delta")) {
          for (const char* k : {"content", "reasoning_content"})
            if (ch["delta"].contains(k) && ch["delta"][k].is_string() && !ch["delta"][k].get<std::string>().empty())
              has_text = true;
        } else if (ch.contains("text") && ch["text"].is_string() && !ch["text"].get<std::string>().empty()) {
          has_text = true;
        }
        if (has_text) token_times.push_back(Clock::now());
      }
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  bool ok = cl.send(req, res, err);
  auto t1 = Clock::now();
  if (!ok) {
    s.error = fmt::format("{} {}: {}", req.method, req.path, httplib::to_string(err));
    return s;
  }
  if (res.status != 200) {
    s.error = fmt::format("HTTP {}: {}", res.status, buf.substr(0, 300));
    return s;
  }
  if (!stream_error.empty() || token_times.empty()) {
    s.error = stream_error.empty() ? "no tokens received" : stream_error;
    return s;
  }
  s.ok = true;
  s.ttft_s = secs(token_times.front() - t0);
  s.latency_s = secs(t1 - t0);
  for (size_t i = 1; i < token_times.size(); ++i) s.itl_s.push_back(secs(token_times[i] - token_times[i - 1]));
  if (s.output_tokens == 0) s.output_tokens = static_cast<int>(token_times.size());
  return s;
}

// ---- in-process ------------------------------------------------------------------------------

RequestSample engine_request(Engine& engine, const std::string& id, const std::vector<int32_t>& ids,
                             const SamplingParams& params, double timeout_s) {
  RequestSample s;
  s.prompt_tokens = static_cast<int>(ids.size());
  auto t0 = Clock::now();
  std::shared_ptr<RequestHandle> h;
  try {
    h = engine.add_request(id, ids, params);
  } catch (const Error& e) {
    s.error = e.what();
    return s;
  }
  std::vector<Clock::time_point> times;
  RequestOutput out;
  auto deadline = t0 + std::chrono::duration<double>(timeout_s);
  for (;;) {
    if (!h->wait_next(out, std::chrono::milliseconds(200))) {
      if (Clock::now() > deadline) {
        engine.abort(id);
        s.error = "timed out";
        return s;
      }
      continue;
    }
    if (out.error) {
      s.error = *out.error;
      return s;
    }
    for (const auto& so : out.outputs) {
      if (!so.new_token_ids.empty()) times.push_back(Clock::now());
      s.output_tokens = so.num_output_tokens;
    }
    if (out.finished) break;
  }
  auto t1 = Clock::now();
  if (times.empty()) {
    s.error = "no tokens generated";
    return s;
  }
  s.ok = true;
  s.ttft_s = secs(times.front() - t0);
  s.latency_s = secs(t1 - t0);
  for (size_t i = 1; i < times.size(); ++i) s.itl_s.push_back(secs(times[i] - times[i - 1]));
  return s;
}

}  // namespace

std::vector<BenchPrompt> make_bench_prompts(const BenchConfig& cfg) {
  std::mt19937_64 rng(cfg.seed);
  const size_t nw = sizeof(kWords) / sizeof(kWords[0]);
  std::vector<BenchPrompt> out;
  for (int i = 0; i < cfg.num_prompts; ++i) {
    BenchPrompt p;
    p.input_len = draw_len(rng, cfg.input_len, cfg.random_range_ratio);
    p.output_len = draw_len(rng, cfg.output_len, cfg.random_range_ratio);
    p.text = fmt::format("{}:", i);
    for (int w = 1; w < p.input_len; ++w) {
      p.text += ' ';
      p.text += kWords[std::uniform_int_distribution<size_t>(0, nw - 1)(rng)];
    }
    out.push_back(std::move(p));
  }
  return out;
}

BenchReport run_bench(const BenchConfig& cfg) {
  validate(cfg);
  auto prompts = make_bench_prompts(cfg);
  std::vector<RequestSample> samples;
  double duration = 0;
  std::string target;
  if (!cfg.base_url.empty()) {
    target = cfg.base_url;
    std::string model = cfg.model_name.empty() ? discover_model(cfg) : cfg.model_name;
    duration = run_pool(cfg.num_prompts, cfg.concurrency, samples, [&](int i) {
      thread_local std::unique_ptr<httplib::Client> cl;
      if (!cl) cl = make_client(cfg);
      return http_request(cfg, *cl, model, prompts[i]);
    });
  } else {
    target = "in-process:" + cfg.model_dir;
    EngineLoadOptions lo = cfg.load;
    lo.engine.max_num_seqs = std::max(lo.engine.max_num_seqs, cfg.concurrency);
    auto engine = load_engine(cfg.model_dir, lo);
    engine->start();
    const Tokenizer& tok = engine->tokenizer();
    std::vector<std::vector<int32_t>> ids;
    for (const auto& p : prompts) {
      auto v = text_prompt_ids(tok, p.text, /*add_bos=*/true);
      // Exactly input_len tokens: cut, or pad by repeating the text's tokens.
      size_t base = v.size();
      while (v.size() < static_cast<size_t>(p.input_len)) v.push_back(v[1 + (v.size() - 1) % std::max<size_t>(1, base - 1)]);
      v.resize(static_cast<size_t>(p.input_len));
      ids.push_back(std::move(v));
    }
    static std::atomic<uint64_t> run_counter{0};
    uint64_t run = run_counter.fetch_add(1);
    duration = run_pool(cfg.num_prompts, cfg.concurrency, samples, [&](int i) {
      SamplingParams sp;
      sp.temperature = static_cast<float>(cfg.temperature);
      sp.max_tokens = std::min(prompts[i].output_len, engine->max_model_len() - static_cast<int>(ids[i].size()));
      sp.ignore_eos = true;
      return engine_request(*engine, fmt::format("bench-{}-{}", run, i), ids[i], sp, cfg.timeout_s);
    });
    engine->shutdown(true);
  }
  BenchReport r = BenchReport::from_samples(samples, duration);
  r.target = target;
  r.endpoint = cfg.model_dir.empty() ? cfg.endpoint : "engine";
  r.num_prompts = cfg.num_prompts;
  r.concurrency = cfg.concurrency;
  r.input_len = cfg.input_len;
  r.output_len = cfg.output_len;
  r.random_range_ratio = cfg.random_range_ratio;
  return r;
}

}  // namespace quench::server
