// quench/eval/data_file.h: reading benchmark files (plain or gzip-compressed) and JSONL records.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace quench::eval {

/// Reads a whole file. A name ending in ".gz" is decompressed with the system `gzip -dc` (run
/// through the sandbox runner, bounded in time and output). Throws IoError naming the path.
std::string read_data_file(const std::filesystem::path& path);

/// Calls `fn(record, where)` for each non-blank line of a JSONL file, where `where` is
/// "FILE:LINE". Each line must be a JSON object. Throws FormatError naming file and line.
void for_each_jsonl(const std::filesystem::path& path,
                    const std::function<void(const nlohmann::json&, const std::string&)>& fn);

/// `rec[key]` as a string; throws FormatError("WHERE: field 'key' ...") when missing or not a string.
std::string json_string_field(const nlohmann::json& rec, const char* key, const std::string& where);

}  // namespace quench::eval
