// quench/io/text_file.cpp: whole-file reads of small text files.
#include "io/text_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace quench {

std::string read_text_file(const std::filesystem::path& path) {
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) throw IoError(path.string() + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, fp)) > 0) text.append(buf, got);
  const bool failed = std::ferror(fp);
  std::fclose(fp);
  if (failed) throw IoError(path.string() + ": read error");
  return text;
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace quench
