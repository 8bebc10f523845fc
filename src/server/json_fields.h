// quench/server/json_fields.h: typed reads of request-body fields that fail with a 400 naming the field.
//
// A JSON `null` counts as absent (OpenAI clients send explicit nulls for unset options). A value
// of the wrong type raises ApiError 400 "BadRequestError" whose message and `param` name the field
// and the expected type, e.g. "'temperature' must be a number, got string".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace quench::server {

/// Read-only view of one JSON object (the request body or a nested object) with a path prefix
/// for error messages ("" for the body, "messages[2]." for a message).
class JsonFields {
 public:
  /// Throws 400 if `obj` is not an object; `where` names it ("request body", "messages[0]").
  JsonFields(const nlohmann::json& obj, std::string prefix, const std::string& where);

  bool has(const char* key) const;
  const nlohmann::json* get(const char* key) const;  ///< nullptr when absent or null
  std::optional<bool> opt_bool(const char* key) const;
  std::optional<int64_t> opt_int(const char* key) const;  ///< integers only (2.0 is accepted, 2.5 is not)
  std::optional<double> opt_number(const char* key) const;
  std::optional<std::string> opt_string(const char* key) const;
  /// The full field name for error messages: prefix + key.
  std::string path(const char* key) const { return prefix_ + key; }

 private:
  const nlohmann::json& obj_;
  std::string prefix_;
};

/// A human name for a JSON value's type ("string", "number", "array" ...), for error messages.
const char* json_type_name(const nlohmann::json& v);

}  // namespace quench::server
