// tests/tokenizer/chat_format_test.cpp: render_chat against jinja2 renderings of Google's Gemma 4
// chat_template.jinja (tests/data/chat/goldens.jsonl, made by tools/fixtures/make_chat_goldens.py),
// byte for byte; BOS exactly once after tokenization; split_reasoning; python_strip.
#include "tokenizer/chat_format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "tokenizer/gemma4_tokenizer_fixture.h"

namespace quench {
namespace {

struct Golden {
  std::string name;
  std::vector<ChatMessage> messages;
  ChatTemplateOptions options;
  std::string rendered;
};

std::vector<Golden> chat_goldens() {
  std::istringstream in(testing::read_source_file("tests/data/chat/goldens.jsonl"));
  std::vector<Golden> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    Golden g;
    g.name = j["name"];
    for (const auto& m : j["messages"]) {
      g.messages.push_back({m["role"], m["content"], m.value("reasoning_content", "")});
    }
    g.options.add_generation_prompt = j["options"]["add_generation_prompt"];
    g.options.enable_thinking = j["options"]["enable_thinking"];
    g.rendered = j["rendered"];
    out.push_back(std::move(g));
  }
  return out;
}

TEST(ChatFormat, MatchesJinjaRenderingsByteForByte) {
  const auto goldens = chat_goldens();
  std::set<std::string> conversations;
  for (const auto& g : goldens) conversations.insert(g.name);
  ASSERT_GE(conversations.size(), 25u);
  for (const auto& g : goldens) {
    EXPECT_EQ(render_chat(g.messages, g.options), g.rendered)
        << g.name << " add_generation_prompt=" << g.options.add_generation_prompt
        << " enable_thinking=" << g.options.enable_thinking;
  }
}

TEST(ChatFormat, MinimalPromptFromTheArchitectureReference) {
  // gemma4-architecture.md §4.2: minimal non-thinking prompt.
  EXPECT_EQ(render_chat({{"user", "Hello", ""}}, {}),
            "<bos><|turn>user\nHello<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
}

TEST(ChatFormat, TokenizedPromptHasBosExactlyOnceAtTheStart) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  int checked = 0;
  for (const auto& g : chat_goldens()) {
    const bool content_writes_bos = std::any_of(g.messages.begin(), g.messages.end(), [](const ChatMessage& m) {
      return m.content.find("<bos>") != std::string::npos;
    });
    if (content_writes_bos) continue;  // user text spelling "<bos>" is matched as the token, as in HF
    const auto ids = tok.encode(render_chat(g.messages, g.options));
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], tok.bos_id()) << g.name;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.bos_id()), 1) << g.name;
    ++checked;
  }
  EXPECT_GT(checked, 80);
}

TEST(ChatFormat, TurnMarkersTokenizeToControlIds) {
  QUENCH_REQUIRE_GEMMA4_TOKENIZER(tok);
  const auto ids = tok.encode(render_chat({{"user", "Hi", ""}}, {}));
  // <bos> <|turn> user \n Hi <turn|> \n <|turn> model \n <|channel> thought \n <channel|>
  ASSERT_GE(ids.size(), 8u);
  EXPECT_EQ(ids[1], 105);
  EXPECT_EQ(ids[3], 107);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 106), ids.end());
  EXPECT_EQ(ids.back(), 101);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 100), 1);
}

TEST(ChatFormat, RejectsUnsupportedRolesAndEmptyConversations) {
  try {
    render_chat({{"user", "q", ""}, {"tool", "42", ""}}, {});
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("messages[1].role"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'tool'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(render_chat({}, {}), InvalidArgument);
  EXPECT_THROW(render_chat({{"model", "x", ""}}, {}), InvalidArgument);
}

TEST(SplitReasoning, SeparatesLeadingThoughtChannel) {
  auto r = split_reasoning("<|channel>thought\nLet me add.<channel|>The answer is 4.");
  EXPECT_TRUE(r.has_reasoning);
  EXPECT_TRUE(r.reasoning_closed);
  EXPECT_EQ(r.reasoning, "Let me add.");
  EXPECT_EQ(r.content, "The answer is 4.");

  r = split_reasoning("\n <|channel>thought\nhmm<channel|>\nok");
  EXPECT_TRUE(r.has_reasoning);
  EXPECT_EQ(r.reasoning, "hmm");
  EXPECT_EQ(r.content, "\nok");

  r = split_reasoning("<|channel>thought\nstill thinking");
  EXPECT_TRUE(r.has_reasoning);
  EXPECT_FALSE(r.reasoning_closed);
  EXPECT_EQ(r.reasoning, "still thinking");
  EXPECT_EQ(r.content, "");

  r = split_reasoning("Plain answer <|channel>not leading<channel|>");
  EXPECT_FALSE(r.has_reasoning);
  EXPECT_EQ(r.content, "Plain answer <|channel>not leading<channel|>");

  r = split_reasoning("<|channel><channel|>empty header");
  EXPECT_TRUE(r.has_reasoning);
  EXPECT_EQ(r.reasoning, "");
  EXPECT_EQ(r.content, "empty header");

  r = split_reasoning("");
  EXPECT_FALSE(r.has_reasoning);
  EXPECT_EQ(r.content, "");
}

TEST(PythonStrip, MatchesStrStripWhitespaceSet) {
  // Expected values follow Python 3: "...".strip().
  EXPECT_EQ(python_strip("  a b \t\n"), "a b");
  EXPECT_EQ(python_strip("\x1c\x1d\x1e\x1fx\x0b\x0c"), "x");
  EXPECT_EQ(python_strip("\u00a0\u3000x\u2028\u2029\u0085"), "x");
  EXPECT_EQ(python_strip("\u200bx\u200b"), "\u200bx\u200b");  // ZERO WIDTH SPACE is not isspace()
  EXPECT_EQ(python_strip("\ufeffx"), "\ufeffx");
  EXPECT_EQ(python_strip(" \xff "), "\xff");                  // invalid bytes kept
  EXPECT_EQ(python_strip("   "), "");
  EXPECT_EQ(python_strip(""), "");
}

}  // namespace
}  // namespace quench
