// tests/server/test_server.cpp: in-process server for the tests.
#include "server/test_server.h"

#include <sstream>

#include <cstdlib>

#include "server/device_runner.h"
#include "server/engine_loader.h"

#include "server/fake_runner.h"
#include "tokenizer/generation_config.h"
#include "tokenizer/tokenizer.h"

namespace quench::test {

TestServer::TestServer(TestServerOptions opts) {
  if (!opts.model_dir.empty()) {
    server::EngineLoadOptions lo;
    lo.engine = opts.engine;
    lo.num_kv_blocks = opts.num_blocks;
    lo.block_size = opts.block_size;
    // QUENCH_TEST_DEVICE=cuda: the real-model server tests run on the GPU runner (H200 host,
    // scripts/gpu-check.sh); a build without the CUDA backend refuses rather than silently using the CPU.
    if (test_device() != "cpu") server::configure_device(lo, test_device(), 0.9, opts.model_dir);
    engine_ = server::load_engine(opts.model_dir, lo);
    if (opts.server.model_root.empty()) opts.server.model_root = opts.model_dir.string();
  } else {
    auto tok = std::make_shared<const Tokenizer>(Tokenizer::from_json_text(make_test_tokenizer_json(), "test tokenizer.json"));
    GenerationConfig gen = GenerationConfig::from_json_text(make_test_generation_config_json(), "test generation_config.json");
    auto runner = std::make_unique<FakeRunner>(tok->vocab_size(), opts.num_blocks, opts.block_size,
                                               opts.max_position_embeddings, opts.step_delay);
    engine_ = std::make_unique<Engine>(std::move(runner), tok, gen, opts.engine);
    if (opts.server.model_root.empty()) opts.server.model_root = "/models/fake-test-model";
    if (opts.server.served_model_names.empty()) opts.server.served_model_names = {"test-model"};
  }
  engine_->start();
  opts.server.host = "127.0.0.1";
  opts.server.port = 0;
  api_ = std::make_unique<server::ApiServer>(*engine_, opts.server);
  port_ = api_->start_background();
}

TestServer::~TestServer() {
  engine_->shutdown(/*abort_running=*/true);
  api_->stop();
  api_.reset();
  engine_.reset();
}

std::unique_ptr<httplib::Client> TestServer::client() const {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(30, 0);
  c->set_write_timeout(30, 0);
  return c;
}

std::pair<int, nlohmann::json> TestServer::post(const std::string& path, const nlohmann::json& body,
                                                const httplib::Headers& headers) const {
  auto c = client();
  auto r = c->Post(path.c_str(), headers, body.dump(), "application/json");
  if (!r) return {-1, nullptr};
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) j = r->body;
  return {r->status, j};
}

double TestServer::metric(const std::string& series) const {
  auto c = client();
  auto r = c->Get("/metrics");
  if (!r || r->status != 200) return -1;
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind(series, 0) == 0) {
      char next = line.size() > series.size() ? line[series.size()] : ' ';
      if (next != '{' && next != ' ' && series.back() != '"' && series.back() != '}') continue;
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return -1;
}

std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
  }
  return out;
}

std::filesystem::path tiny_model_dir() { return std::filesystem::path(QUENCH_SOURCE_DIR) / "models" / "gemma4-tiny-it"; }

std::string test_device() {
  const char* d = std::getenv("QUENCH_TEST_DEVICE");
  return d && *d ? d : "cpu";
}

bool tiny_model_present() {
  auto d = tiny_model_dir();
  return std::filesystem::exists(d / "config.json") && std::filesystem::exists(d / "tokenizer.json");
}

}  // namespace quench::test
