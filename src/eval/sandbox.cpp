// quench/eval/sandbox.cpp: fork/exec with rlimits, namespaces, captured output and a wall-clock
// kill (see sandbox.h). Between fork and exec the child only makes async-signal-safe calls: every
// string and array it needs is built before fork().
#include "eval/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace quench::eval {

namespace {

namespace fs = std::filesystem;

// Exit codes the child uses to report set-up failures through the status pipe's first byte.
constexpr char kStatusExecFailed = 'E';
constexpr char kStatusNoNamespace = 'N';

std::string errno_text() { return std::strerror(errno); }

struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "quench-eval-XXXXXX").string();
    if (!mkdtemp(templ.data())) throw IoError("sandbox: cannot create a temporary directory under " +
                                              fs::temp_directory_path().string() + ": " + errno_text());
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);  // a program that chmod-ed its files away only leaves a temp dir behind
  }
};

void set_limit(int resource, rlim_t soft, rlim_t hard) {
  struct rlimit rl{soft, hard};
  setrlimit(resource, &rl);
}

void append_capped(std::string& dst, const char* buf, std::size_t n, std::size_t cap) {
  if (dst.size() < cap) dst.append(buf, std::min(n, cap - dst.size()));
}

// Whether unshare(CLONE_NEWNET | CLONE_NEWPID) works here (probed once with a throwaway child).
bool pid_and_net_namespace_available() {
  static const bool available = [] {
    const pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) _exit(unshare(CLONE_NEWNET | CLONE_NEWPID) == 0 ? 0 : 1);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }();
  return available;
}

}  // namespace

bool network_namespace_available() {
  static const bool available = [] {
    const pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) _exit(unshare(CLONE_NEWNET) == 0 ? 0 : 1);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }();
  return available;
}

SandboxResult run_sandboxed(const std::vector<std::string>& argv, const std::string& stdin_data,
                            const std::vector<std::pair<std::string, std::string>>& files,
                            const SandboxOptions& opt) {
  if (argv.empty()) throw InvalidArgument("sandbox: empty argv");
  TempDir dir;
  for (const auto& [name, content] : files) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      throw InvalidArgument("sandbox: file name '" + name + "' must be a plain name");
    std::ofstream f(dir.path / name, std::ios::binary);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!f) throw IoError("sandbox: cannot write " + (dir.path / name).string());
  }

  // Everything the child needs, prepared before fork().
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const char* path_env = std::getenv("PATH");
  std::vector<std::string> env = {
      std::string("PATH=") + (path_env ? path_env : "/usr/local/bin:/usr/bin:/bin"),
      "HOME=" + dir.path.string(), "TMPDIR=" + dir.path.string(), "LANG=C.UTF-8",
      "PYTHONDONTWRITEBYTECODE=1", "PYTHONHASHSEED=0", "PYTHONIOENCODING=utf-8"};
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  const std::string workdir = dir.path.string();

  int in_pipe[2], out_pipe[2], err_pipe[2], status_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) ||
      pipe2(status_pipe, O_CLOEXEC))
    throw IoError("sandbox: pipe: " + errno_text());

  const bool pid_namespace = opt.isolate_network && pid_and_net_namespace_available();
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) throw IoError("sandbox: fork: " + errno_text());
  if (pid == 0) {
    // ---- child (no allocation from here on) ----
    setpgid(0, 0);
    bool pid_ns = false;
    if (opt.isolate_network) {
      if (pid_namespace && unshare(CLONE_NEWNET | CLONE_NEWPID) == 0) {
        pid_ns = true;
      } else if (unshare(CLONE_NEWNET) != 0 && opt.require_network_isolation) {
        const char c = kStatusNoNamespace;
        (void)!write(status_pipe[1], &c, 1);
        _exit(126);
      }
    }
    if (pid_ns) {
      // Two relays: this process (old namespace) forks PID 1 of the new namespace, which forks the
      // program. The program is not PID 1, so kernel signals (SIGXCPU, SIGKILL at the hard CPU
      // limit) reach it as usual; when PID 1 exits, every process left in the namespace dies.
      // Each relay reports a signal death as exit status 128 + signal.
      for (int level = 0; level < 2; ++level) {
        const pid_t inner = fork();
        if (inner < 0) _exit(125);
        if (inner == 0) continue;
        close(in_pipe[0]); close(in_pipe[1]); close(out_pipe[0]); close(out_pipe[1]);
        close(err_pipe[0]); close(err_pipe[1]); close(status_pipe[0]); close(status_pipe[1]);
        int st = 0;
        while (waitpid(inner, &st, 0) < 0 && errno == EINTR) {
        }
        if (WIFSIGNALED(st)) _exit(128 + WTERMSIG(st));
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 125);
      }
    }
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    // Keep only 0-2 and the status pipe (moved to fd 3, close-on-exec); close every other fd the
    // parent had open (sockets of an HTTP client, other children's pipes).
    if (status_pipe[1] != 3) dup2(status_pipe[1], 3);
    fcntl(3, F_SETFD, FD_CLOEXEC);
    if (close_range(4, ~0U, 0) != 0)
      for (int fd = 4; fd < 65536; ++fd) close(fd);
    if (chdir(workdir.c_str()) != 0) _exit(125);
    set_limit(RLIMIT_CPU, opt.cpu_seconds, opt.cpu_seconds + 1);
    set_limit(RLIMIT_AS, opt.memory_bytes, opt.memory_bytes);
    set_limit(RLIMIT_FSIZE, opt.file_bytes, opt.file_bytes);
    set_limit(RLIMIT_NPROC, opt.max_processes, opt.max_processes);
    set_limit(RLIMIT_CORE, 0, 0);
    execvpe(cargv[0], cargv.data(), cenv.data());
    const char c = kStatusExecFailed;
    (void)!write(3, &c, 1);
    _exit(127);
  }

  // ---- parent ----
  setpgid(pid, pid);  // also done by the child; whichever runs first wins, both are the same
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(status_pipe[1]);

  SandboxResult r;
  r.network_isolated = opt.isolate_network && network_namespace_available();
  // Block SIGPIPE on this thread while feeding stdin; a pending one is discarded below.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

  int in_fd = in_pipe[1];
  fcntl(in_fd, F_SETFL, O_NONBLOCK);
  std::size_t in_off = 0;
  if (stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  const auto deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(opt.wall_seconds));
  bool exited = false;
  int status = 0;
  auto drain_deadline = deadline;
  char buf[16384];
  while (out_fd >= 0 || err_fd >= 0 || !exited) {
    const auto now = std::chrono::steady_clock::now();
    if (!exited && now >= deadline) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
    }
    if (exited && now >= drain_deadline) break;  // a straggler holds the pipes: give up on them
    if (!exited) {
      const pid_t w = waitpid(pid, &status, r.timed_out ? 0 : WNOHANG);
      if (w == pid) {
        exited = true;
        kill(-pid, SIGKILL);  // stragglers (background children) go with it
        drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
    }
    pollfd fds[3];
    int nfds = 0;
    if (out_fd >= 0) fds[nfds++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[nfds++] = {err_fd, POLLIN, 0};
    if (in_fd >= 0) fds[nfds++] = {in_fd, POLLOUT, 0};
    if (nfds == 0) {
      if (!exited) usleep(2000);
      continue;
    }
    const int pr = poll(fds, static_cast<nfds_t>(nfds), 20);
    if (pr <= 0) continue;
    for (int k = 0; k < nfds; ++k) {
      if (!fds[k].revents) continue;
      if (fds[k].fd == in_fd) {
        const ssize_t w = write(in_fd, stdin_data.data() + in_off, stdin_data.size() - in_off);
        if (w > 0) in_off += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) in_off = stdin_data.size();
        if (in_off >= stdin_data.size() || (fds[k].revents & (POLLERR | POLLHUP))) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      const ssize_t n = read(fds[k].fd, buf, sizeof buf);
      if (n > 0) {
        append_capped(fds[k].fd == out_fd ? r.stdout_text : r.stderr_text, buf, static_cast<std::size_t>(n),
                      opt.max_output_bytes);
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        if (fds[k].fd == out_fd) { close(out_fd); out_fd = -1; }
        else { close(err_fd); err_fd = -1; }
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
  {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  }

  char st = 0;
  const bool have_status = read(status_pipe[0], &st, 1) == 1;
  close(status_pipe[0]);
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (have_status && st == kStatusNoNamespace)
    throw IoError("sandbox: cannot create a network namespace (unshare(CLONE_NEWNET) not permitted) and "
                  "network isolation is required");
  r.started = !(have_status && st == kStatusExecFailed);
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    // Through the PID-namespace relays a signal death arrives as 128 + signal (so a program that
    // itself exits with 129..192 reads as killed: acceptable for a pass/fail harness).
    if (pid_namespace && r.exit_code > 128 && r.exit_code <= 128 + 64) {
      r.term_signal = r.exit_code - 128;
      r.exit_code = -1;
    }
  } else if (WIFSIGNALED(status)) {
    r.term_signal = WTERMSIG(status);
  }
  if (r.timed_out) {
    r.exit_code = -1;
    r.term_signal = SIGKILL;
  }
  return r;
}

}  // namespace quench::eval
