// quench/server/http_util.cpp: JSON bodies and error replies.
#include "server/http_util.h"

#include <chrono>

#include <fmt/format.h>

#include "server/sse.h"

namespace quench::server {

nlohmann::json parse_json_body(const httplib::Request& req) {
  if (req.has_header("Content-Type")) {
    std::string ct = req.get_header_value("Content-Type");
    std::string media = ct.substr(0, ct.find(';'));
    while (!media.empty() && media.back() == ' ') media.pop_back();
    for (auto& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (media != "application/json")
      throw ApiError(415, "Unsupported Media Type",
                     fmt::format("Unsupported Media Type: Only 'application/json' is allowed (got '{}')", ct));
  }
  try {
    return nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    throw bad_request(fmt::format("request body is not valid JSON: {}", e.what()));
  }
}

void reply_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

void reply_error(httplib::Response& res, const ApiError& e) { reply_json(res, e.status(), e.to_json()); }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace quench::server
