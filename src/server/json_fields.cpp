// quench/server/json_fields.cpp: typed request-field reads.
#include "server/json_fields.h"

#include <cmath>

#include <fmt/format.h>

#include "server/api_error.h"

namespace quench::server {

const char* json_type_name(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "object";
    case nlohmann::json::value_t::array: return "array";
    case nlohmann::json::value_t::string: return "string";
    case nlohmann::json::value_t::boolean: return "boolean";
    case nlohmann::json::value_t::number_float: return "number";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "integer";
    default: return "value";
  }
}

JsonFields::JsonFields(const nlohmann::json& obj, std::string prefix, const std::string& where)
    : obj_(obj), prefix_(std::move(prefix)) {
  if (!obj_.is_object())
    throw bad_request(fmt::format("{} must be a JSON object, got {}", where, json_type_name(obj_)),
                      prefix_.empty() ? std::nullopt : std::optional<std::string>(where));
}

bool JsonFields::has(const char* key) const { return get(key) != nullptr; }

const nlohmann::json* JsonFields::get(const char* key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<bool> JsonFields::opt_bool(const char* key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean())
    throw bad_request(fmt::format("'{}' must be a boolean, got {}", path(key), json_type_name(*v)), path(key));
  return v->get<bool>();
}

std::optional<int64_t> JsonFields::opt_int(const char* key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX))
      throw bad_request(fmt::format("'{}' must fit in a signed 64-bit integer, got {}", path(key), u), path(key));
    return static_cast<int64_t>(u);
  }
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
  }
  throw bad_request(fmt::format("'{}' must be an integer, got {}", path(key),
                                v->is_number() ? v->dump() : std::string(json_type_name(*v))),
                    path(key));
}

std::optional<double> JsonFields::opt_number(const char* key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_number())
    throw bad_request(fmt::format("'{}' must be a number, got {}", path(key), json_type_name(*v)), path(key));
  return v->get<double>();
}

std::optional<std::string> JsonFields::opt_string(const char* key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_string())
    throw bad_request(fmt::format("'{}' must be a string, got {}", path(key), json_type_name(*v)), path(key));
  return v->get<std::string>();
}

}  // namespace quench::server
