// quench/server/serving_context.cpp: shared handler state.
#include "server/serving_context.h"

#include <chrono>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "server/api_error.h"

namespace quench::server {

ServingContext::ServingContext(Engine& engine, ServerConfig cfg) : engine_(engine), cfg_(std::move(cfg)) {
  if (cfg_.served_model_names.empty()) {
    std::string name = std::filesystem::path(cfg_.model_root).lexically_normal().filename().string();
    if (name.empty()) name = std::filesystem::path(cfg_.model_root).lexically_normal().parent_path().filename().string();
    cfg_.served_model_names.push_back(name.empty() ? "quench" : name);
  }
  std::random_device rd;
  id_salt_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
             static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

void ServingContext::check_model(const std::optional<std::string>& model) const {
  if (!model) return;
  for (const auto& n : cfg_.served_model_names)
    if (n == *model) return;
  throw ApiError(404, "NotFoundError", fmt::format("The model `{}` does not exist.", *model), "model");
}

std::string ServingContext::new_request_id(const char* prefix) {
  // splitmix64 of (salt, counter): unique per process, unpredictable across restarts.
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  uint64_t c = id_counter_.fetch_add(1);
  return fmt::format("{}-{:016x}{:016x}", prefix, mix(id_salt_ ^ c), mix((c + 1) * 0x2545F4914F6CDD1DULL + ~id_salt_));
}

}  // namespace quench::server
