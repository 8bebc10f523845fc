// quench/tokenizer/json_path.cpp: typed tokenizer.json access with path-naming errors.
#include "tokenizer/json_path.h"

namespace quench::tok_json {

void Node::fail(const std::string& what) const {
  throw FormatError(file + ": " + (path.empty() ? "/" : path) + ": " + what);
}

Node Node::at(const std::string& key) const {
  if (!value.is_object()) fail("expected an object");
  auto it = value.find(key);
  if (it == value.end()) fail("missing key '" + key + "'");
  return {*it, file, path + "/" + key};
}

const nlohmann::json* Node::find(const std::string& key) const {
  if (!value.is_object()) fail("expected an object");
  auto it = value.find(key);
  if (it == value.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string Node::str() const {
  if (!value.is_string()) fail(std::string("expected a string, got ") + value.type_name());
  return value.get<std::string>();
}

int64_t Node::integer() const {
  if (!value.is_number_integer()) fail(std::string("expected an integer, got ") + value.type_name());
  return value.get<int64_t>();
}

bool Node::boolean() const {
  if (!value.is_boolean()) fail(std::string("expected a boolean, got ") + value.type_name());
  return value.get<bool>();
}

bool bool_or(const Node& obj, const std::string& key, bool dflt) {
  return obj.find(key) ? obj.child(key).boolean() : dflt;
}

}  // namespace quench::tok_json
