// quench/server/api_error.h: the error a request handler raises and its OpenAI/vLLM JSON body.
//
// Body shape (vLLM >= 0.10.1, ../shared/reference/openai-api.md §6.2):
//   {"error": {"message": str, "type": str, "param": str|null, "code": <int = HTTP status>}}
// The HTTP status equals `code`. Schema and range errors are 400 (never 422), unknown models 404,
// oversized bodies 413, wrong Content-Type 415, internal failures 500.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace quench::server {

/// A request that must be answered with an HTTP error status and the OpenAI error envelope.
class ApiError : public Error {
 public:
  /// status: HTTP status (400, 404, 413, 415, 500 ...); type: vLLM's exception label
  /// ("BadRequestError", "NotFoundError", "InternalServerError"); param: the offending request
  /// field as a JSON path (e.g. "messages[1].role"), or nullopt.
  ApiError(int status, std::string type, std::string message, std::optional<std::string> param = std::nullopt)
      : Error(message), status_(status), type_(std::move(type)), param_(std::move(param)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::optional<std::string>& param() const { return param_; }

  /// The JSON envelope `{"error": {...}}` with code = status.
  nlohmann::json to_json() const;

 private:
  int status_;
  std::string type_;
  std::optional<std::string> param_;
};

/// 400 BadRequestError naming `param`.
ApiError bad_request(const std::string& message, std::optional<std::string> param = std::nullopt);
/// 404 NotFoundError.
ApiError not_found(const std::string& message, std::optional<std::string> param = std::nullopt);

/// The error envelope for any status, e.g. for in-band SSE errors and route-level failures.
nlohmann::json error_body(int status, const std::string& type, const std::string& message,
                          const std::optional<std::string>& param = std::nullopt);

}  // namespace quench::server
