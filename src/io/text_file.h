// quench/io/text_file.h: whole-file reads of small text files (config.json, index files).
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace quench {

/// Reads the whole file as bytes; throws IoError naming the path and the OS error.
std::string read_text_file(const std::filesystem::path& path);

/// Reads and parses a JSON file; throws IoError (unreadable) or FormatError naming the path and
/// the parser's message (byte position) for malformed JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace quench
