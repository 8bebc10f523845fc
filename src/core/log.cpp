// quench/core/log.cpp: the process-wide spdlog logger.
#include "core/log.h"

#include <cstdlib>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/error.h"

namespace quench {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("quench");
    l->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
    l->set_level(spdlog::level::info);
    if (const char* env = std::getenv("QUENCH_LOG_LEVEL")) {
      auto lvl = spdlog::level::from_str(env);
      if (lvl != spdlog::level::off || std::string(env) == "off") l->set_level(lvl);
    }
    return l;
  }();
  return *logger;
}

void set_log_level(std::string_view level) {
  static constexpr std::string_view kNames[] = {"trace", "debug", "info", "warn",
                                                "error", "critical", "off"};
  for (auto n : kNames) {
    if (n == level) {
      log().set_level(spdlog::level::from_str(std::string(level)));
      return;
    }
  }
  throw InvalidArgument("log level '" + std::string(level) +
                        "' (expected trace, debug, info, warn, error, critical or off)");
}

}  // namespace quench
