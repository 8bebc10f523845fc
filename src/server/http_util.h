// quench/server/http_util.h: small helpers shared by the route handlers (JSON bodies, error replies).
#pragma once

#include <cstdint>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace quench::server {

/// Parses the request body as JSON. Throws ApiError 415 when Content-Type is set and is not
/// application/json, 400 "malformed JSON" (with the parser's byte offset) otherwise.
nlohmann::json parse_json_body(const httplib::Request& req);

/// Writes a JSON reply with the given status.
void reply_json(httplib::Response& res, int status, const nlohmann::json& body);
/// Writes the error envelope of `e` with its status.
void reply_error(httplib::Response& res, const ApiError& e);

/// Unix time in seconds (the `created` field).
int64_t unix_now();

/// Milliseconds since `t0` on the steady clock.
double ms_since(std::chrono::steady_clock::time_point t0);

}  // namespace quench::server
