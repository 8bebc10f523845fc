// tests/engine/request_handle_test.cpp: order, timeouts, nothing after the last message, threads.
#include "engine/request_handle.h"

#include <thread>

#include <gtest/gtest.h>

namespace quench {
namespace {

TEST(RequestHandle, DeliversInOrderAndTimesOut) {
  RequestHandle h("r");
  RequestOutput out;
  EXPECT_FALSE(h.wait_next(out, std::chrono::milliseconds(1)));
  RequestOutput a, b;
  a.num_prompt_tokens = 1;
  b.num_prompt_tokens = 2;
  b.finished = true;
  h.push(a);
  h.push(b);
  EXPECT_TRUE(h.finished());
  RequestOutput late;
  late.num_prompt_tokens = 3;
  h.push(late);  // dropped: nothing follows the last message
  ASSERT_TRUE(h.wait_next(out, std::chrono::milliseconds(0)));
  EXPECT_EQ(out.num_prompt_tokens, 1);
  ASSERT_TRUE(h.wait_next(out, std::chrono::milliseconds(0)));
  EXPECT_EQ(out.num_prompt_tokens, 2);
  EXPECT_FALSE(h.wait_next(out, std::chrono::milliseconds(0)));
}

TEST(RequestHandle, WakesAWaitingReader) {
  RequestHandle h("r");
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    RequestOutput o;
    o.finished = true;
    h.push(o);
  });
  RequestOutput out;
  EXPECT_TRUE(h.wait_next(out, std::chrono::seconds(10)));
  EXPECT_TRUE(out.finished);
  producer.join();
}

}  // namespace
}  // namespace quench
