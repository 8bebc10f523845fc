// Tests for src/eval/sandbox.cpp: output capture, exit codes, the wall-clock kill of a process
// group (including a forked child), rlimits, and network isolation where the OS allows it.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <csignal>

#include "core/error.h"
#include "eval/sandbox.h"

namespace quench::eval {
namespace {

SandboxOptions quick() {
  SandboxOptions o;
  o.wall_seconds = 3;
  o.cpu_seconds = 3;
  return o;
}

TEST(Sandbox, CapturesOutputAndExitCodeInAnEmptyDirectory) {
  const auto r = run_sandboxed({"sh", "-c", "ls -A; echo out; echo err >&2; cat input.txt; exit 3"}, "", {{"input.txt", "hello"}}, quick());
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.stdout_text, "input.txt\nout\nhello");
  EXPECT_EQ(r.stderr_text, "err\n");
  EXPECT_FALSE(r.timed_out);
}

TEST(Sandbox, FeedsStdin) {
  const auto r = run_sandboxed({"cat"}, std::string(200000, 'x'), {}, quick());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text.size(), 64u * 1024u);  // truncated to max_output_bytes
}

TEST(Sandbox, WallClockKillsTheWholeGroup) {
  const auto t0 = std::chrono::steady_clock::now();
  SandboxOptions o = quick();
  o.wall_seconds = 1;
  // A background child that would outlive its parent and keep the pipes open.
  const auto r = run_sandboxed({"sh", "-c", "sleep 30 & sleep 30"}, "", {}, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(secs, 5.0);
}

TEST(Sandbox, StragglersDoNotBlockAfterExit) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_sandboxed({"sh", "-c", "sleep 30 & echo done"}, "", {}, quick());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "done\n");
  EXPECT_LT(secs, 2.5);
}

TEST(Sandbox, MemoryLimitStopsAHugeAllocation) {
  SandboxOptions o = quick();
  o.memory_bytes = 256ull << 20;
  const auto r = run_sandboxed({"python3", "-c", "x = bytearray(1 << 30)\nprint('allocated')"}, "", {}, o);
  ASSERT_TRUE(r.started) << "python3 is needed for this test";
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text.find("allocated"), std::string::npos);
  EXPECT_NE(r.stderr_text.find("MemoryError"), std::string::npos) << r.stderr_text;
}

TEST(Sandbox, CpuLimitOrTimeoutStopsABusyLoop) {
  SandboxOptions o = quick();
  o.cpu_seconds = 1;
  o.wall_seconds = 4;
  const auto r = run_sandboxed({"python3", "-c", "while True: pass"}, "", {}, o);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.term_signal != 0 || r.timed_out);
}

TEST(Sandbox, FileSizeLimit) {
  SandboxOptions o = quick();
  o.file_bytes = 1 << 20;
  const auto r = run_sandboxed({"sh", "-c", "head -c 5000000 /dev/zero > big; echo $?"}, "", {}, o);
  EXPECT_NE(r.stdout_text, "0\n");
}

TEST(Sandbox, NoNetworkWhenIsolated) {
  if (!network_namespace_available()) GTEST_SKIP() << "unshare(CLONE_NEWNET) not permitted here: network isolation is a documented limit";
  const auto r = run_sandboxed(
      {"python3", "-c",
       "import socket\ns = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('1.1.1.1', 80))\n    print('connected')\n"
       "except OSError as e:\n    print('blocked', e.errno)\n"},
      "", {}, quick());
  EXPECT_TRUE(r.network_isolated);
  EXPECT_NE(r.stdout_text.find("blocked"), std::string::npos) << r.stdout_text << r.stderr_text;
}

TEST(Sandbox, ParentFileDescriptorsAreNotInherited) {
  const int fd = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(fd, 0);
  const auto r = run_sandboxed({"sh", "-c", "ls /proc/self/fd"}, "", {}, quick());
  ::close(fd);
  EXPECT_EQ(r.stdout_text, "0\n1\n2\n3\n");  // 3 is ls's own handle on /proc/self/fd
}

TEST(Sandbox, MissingProgramIsReportedNotThrown) {
  const auto r = run_sandboxed({"quench-no-such-program-xyz"}, "", {}, quick());
  EXPECT_FALSE(r.started);
  EXPECT_THROW(run_sandboxed({}, "", {}, quick()), InvalidArgument);
  EXPECT_THROW(run_sandboxed({"true"}, "", {{"../x", ""}}, quick()), InvalidArgument);
}

}  // namespace
}  // namespace quench::eval
