// quench/server/api_error.cpp: OpenAI/vLLM error envelope.
#include "server/api_error.h"

namespace quench::server {

nlohmann::json error_body(int status, const std::string& type, const std::string& message,
                          const std::optional<std::string>& param) {
  nlohmann::json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}};
  if (param) e["param"] = *param;
  return nlohmann::json{{"error", std::move(e)}};
}

nlohmann::json ApiError::to_json() const { return error_body(status_, type_, what(), param_); }

ApiError bad_request(const std::string& message, std::optional<std::string> param) {
  return ApiError(400, "BadRequestError", message, std::move(param));
}

ApiError not_found(const std::string& message, std::optional<std::string> param) {
  return ApiError(404, "NotFoundError", message, std::move(param));
}

}  // namespace quench::server
