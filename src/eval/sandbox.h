// quench/eval/sandbox.h: run an untrusted program (model-written Python) in a contained child process.
//
// The child is fork()ed and exec()ed in a fresh empty temporary directory (removed afterwards),
// in its own process group, with a minimal environment, stdin from a pipe, stdout/stderr captured
// (truncated to `max_output_bytes` each) and:
//   - rlimits: RLIMIT_CPU (cpu_seconds), RLIMIT_AS (memory_bytes), RLIMIT_FSIZE (file_bytes),
//     RLIMIT_NPROC (max_processes; the kernel does not enforce it for root), RLIMIT_CORE 0;
//   - a new network namespace (unshare(CLONE_NEWNET): only a down loopback, no route out) and a new
//     PID namespace, where the kernel allows it (root or user namespaces). The program then runs as
//     PID 1 of its namespace, so when it dies every process it forked dies too. Where unshare is not
//     permitted the run proceeds without network isolation unless `require_network_isolation`, and
//     SandboxResult::network_isolated says which happened (documented limit);
//   - a wall-clock timeout: the whole process group gets SIGKILL.
// Nothing the child does can block or crash the caller: all waits are bounded by the timeout.
// Not isolated: the file system (the child runs as the caller's user; it starts in an empty
// directory but can read what that user can read).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace quench::eval {

/// Limits for one sandboxed run.
struct SandboxOptions {
  double wall_seconds = 10.0;                  ///< wall-clock timeout; the process group is killed
  unsigned cpu_seconds = 10;                   ///< RLIMIT_CPU
  std::size_t memory_bytes = 1024ull << 20;    ///< RLIMIT_AS (address space), 1 GiB
  std::size_t file_bytes = 16ull << 20;        ///< RLIMIT_FSIZE, largest file it may write
  unsigned max_processes = 64;                 ///< RLIMIT_NPROC
  std::size_t max_output_bytes = 64 * 1024;    ///< stdout and stderr are each truncated to this
  bool isolate_network = true;                 ///< try unshare(CLONE_NEWNET | CLONE_NEWPID)
  bool require_network_isolation = false;      ///< refuse to run when the namespace cannot be made
};

/// What happened to one sandboxed run.
struct SandboxResult {
  int exit_code = -1;          ///< exit status when the program exited normally, else -1
  int term_signal = 0;         ///< the signal that ended it, 0 when it exited
  bool timed_out = false;      ///< killed by the wall-clock timeout
  bool network_isolated = false;
  bool started = false;        ///< false when exec failed (e.g. program not found)
  std::string stdout_text;     ///< captured, truncated
  std::string stderr_text;     ///< captured, truncated
  double wall_seconds = 0;
};

/// Runs argv[0] (looked up on PATH) with `argv`, writing `stdin_data` to its stdin. `files` are
/// written into the temporary working directory first (name, content). Throws IoError when the
/// temporary directory, pipes or fork cannot be created, InvalidArgument for an empty argv.
SandboxResult run_sandboxed(const std::vector<std::string>& argv, const std::string& stdin_data,
                            const std::vector<std::pair<std::string, std::string>>& files,
                            const SandboxOptions& options);

/// Whether this process may create a network namespace (probed once with a throwaway child).
bool network_namespace_available();

}  // namespace quench::eval
