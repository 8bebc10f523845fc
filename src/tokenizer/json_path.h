// quench/tokenizer/json_path.h: typed access to tokenizer.json fields with errors that name the file
// and the JSON path (e.g. "tokenizer.json: /model/merges/17: expected a string or [a, b] pair").
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"  // FormatError

namespace quench::tok_json {

/// A JSON value together with where it is (file and JSON pointer), for error messages.
struct Node {
  const nlohmann::json& value;
  std::string file;
  std::string path;  ///< JSON pointer, "" for the root

  /// The member `key`; throws FormatError when this is not an object or the key is missing.
  Node at(const std::string& key) const;
  /// The member `key`, or nullptr when absent or null.
  const nlohmann::json* find(const std::string& key) const;
  Node child(const std::string& key) const { return {value.at(key), file, path + "/" + key}; }
  Node index(size_t i) const { return {value.at(i), file, path + "/" + std::to_string(i)}; }
  /// Typed getters; throw FormatError naming the path and the expected type.
  std::string str() const;
  int64_t integer() const;
  bool boolean() const;
  /// Throws FormatError "<file>: <path>: <what>".
  [[noreturn]] void fail(const std::string& what) const;
};

/// Optional boolean member with a default (absent or null -> dflt).
bool bool_or(const Node& obj, const std::string& key, bool dflt);

}  // namespace quench::tok_json
