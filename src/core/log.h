// quench/core/log.h: the process-wide logger (spdlog, stderr) and its level.
//
// Library code logs through quench::log() so that the CLI controls verbosity in one place
// (`QUENCH_LOG_LEVEL=debug|info|warn|error|off`, default info). Messages follow the error rule:
// name the input (file, tensor, key) the line is about.
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

namespace quench {

/// The shared logger named "quench", created on first use; writes to stderr.
spdlog::logger& log();

/// Sets the level by name ("trace", "debug", "info", "warn", "error", "critical", "off");
/// throws InvalidArgument naming the value for anything else.
void set_log_level(std::string_view level);

}  // namespace quench
