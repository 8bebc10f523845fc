// quench/eval/data_file.cpp: benchmark file reading (see data_file.h).
#include "eval/data_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "eval/sandbox.h"

namespace quench::eval {

std::string read_data_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path.string() + ": cannot open for reading");
  if (path.extension() != ".gz") {
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  SandboxOptions opt;
  opt.wall_seconds = 60;
  opt.cpu_seconds = 60;
  opt.isolate_network = false;
  opt.max_output_bytes = std::size_t{1} << 30;
  const SandboxResult r =
      run_sandboxed({"gzip", "-dc", std::filesystem::absolute(path).string()}, "", {}, opt);
  if (!r.started) throw IoError(path.string() + ": cannot run `gzip -dc` to decompress it (is gzip installed?)");
  if (r.exit_code != 0)
    throw IoError(path.string() + ": `gzip -dc` failed (exit " + std::to_string(r.exit_code) + "): " + r.stderr_text);
  return r.stdout_text;
}

void for_each_jsonl(const std::filesystem::path& path,
                    const std::function<void(const nlohmann::json&, const std::string&)>& fn) {
  const std::string text = read_data_file(path);
  std::size_t start = 0, line_no = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(line_no);
    nlohmann::json rec;
    try {
      rec = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(where + ": not valid JSON (" + e.what() + ")");
    }
    if (!rec.is_object()) throw FormatError(where + ": expected a JSON object per line");
    fn(rec, where);
  }
}

std::string json_string_field(const nlohmann::json& rec, const char* key, const std::string& where) {
  auto it = rec.find(key);
  if (it == rec.end()) throw FormatError(where + ": field '" + key + "' is missing");
  if (!it->is_string()) throw FormatError(where + ": field '" + key + "' must be a string, got " + it->dump());
  return it->get<std::string>();
}

}  // namespace quench::eval
