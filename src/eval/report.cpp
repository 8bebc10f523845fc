// quench/eval/report.cpp: capability table and report files (see report.h).
#include "eval/report.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace quench::eval {

namespace {

std::string cell(const nlohmann::json& report, const char* task, const char* metric) {
  const auto& tasks = report.value("tasks", nlohmann::json::object());
  if (!tasks.contains(task)) return "-";
  const auto& s = tasks[task]["summary"];
  if (!s.contains(metric)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f (%lld)", 100.0 * s[metric].get<double>(), s.value("n", 0LL));
  return buf;
}

}  // namespace

std::string render_table(const std::vector<nlohmann::json>& reports) {
  std::ostringstream out;
  out << "| model | MMLU (n) | HumanEval-syn (n) | HumanEval-fun (n) | IFEval (n) |\n";
  out << "|---|---|---|---|---|\n";
  for (const auto& r : reports) {
    out << "| " << r.value("model", std::string("?")) << " | " << cell(r, "mmlu", "accuracy") << " | "
        << cell(r, "humaneval", "syntactic") << " | " << cell(r, "humaneval", "functional") << " | "
        << cell(r, "ifeval", "prompt_level_strict_acc") << " |\n";
  }
  return out.str();
}

void write_json_atomic(const std::filesystem::path& path, const nlohmann::json& j) {
  const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw IoError(tmp.string() + ": cannot open for writing");
    f << j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    f.flush();
    if (!f) throw IoError(tmp.string() + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw IoError(path.string() + ": cannot rename the temporary file into place");
  }
}

nlohmann::json read_report(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(path.string() + ": cannot open for reading");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object() || j.value("format", std::string()) != "quench-eval-report/1" || !j.contains("tasks"))
    throw FormatError(path.string() + ": not a quench eval report (expected \"format\": \"quench-eval-report/1\")");
  return j;
}

}  // namespace quench::eval
