// Tests for core/log: level names accepted and rejected.
#include "core/log.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace quench {
namespace {

TEST(Log, SetLevelByName) {
  set_log_level("warn");
  EXPECT_EQ(log().level(), spdlog::level::warn);
  set_log_level("debug");
  EXPECT_EQ(log().level(), spdlog::level::debug);
  set_log_level("info");
  EXPECT_EQ(log().level(), spdlog::level::info);
}

TEST(Log, UnknownLevelIsInvalidArgumentNamingIt) {
  try {
    set_log_level("verbose");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'verbose'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace quench
