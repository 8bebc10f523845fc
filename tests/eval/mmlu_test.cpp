// Tests for src/eval/mmlu.cpp: both CSV layouts (tests/data/eval/mmlu_letter: headerless, letter
// answers, CRLF, quoted fields; mmlu_index: header row, index answers, test/ and dev/), balanced
// seeded sampling, the prompt, and answer extraction on crafted responses.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "eval/mmlu.h"

namespace quench::eval {
namespace {

const std::string kData = std::string(QUENCH_SOURCE_DIR) + "/tests/data/eval/";

TEST(Mmlu, HeaderlessLetterLayout) {
  const auto d = load_mmlu(kData + "mmlu_letter");
  ASSERT_EQ(d.test.size(), 1u);
  const auto& qs = d.test.at("toy_math");
  ASSERT_EQ(qs.size(), 3u);
  EXPECT_EQ(qs[0].choices[1], "4");
  EXPECT_EQ(qs[0].answer, 1);
  EXPECT_EQ(qs[1].question, "Which word, if any, has a \"quote\"?");
  EXPECT_EQ(qs[1].choices[1], "\"this\"");
  EXPECT_EQ(qs[2].question, "Multi\nline question?");  // a newline inside quotes is kept
  EXPECT_EQ(qs[2].answer, 0);
  EXPECT_EQ(qs[2].id, "toy_math/test/2");
  EXPECT_EQ(d.num_dev(), 0u);
}

TEST(Mmlu, HeaderIndexLayoutWithDevSplit) {
  const auto d = load_mmlu(kData + "mmlu_index");
  EXPECT_EQ(d.num_test(), 10u);
  EXPECT_EQ(d.num_dev(), 1u);
  EXPECT_EQ(d.test.at("toy_geo")[2].answer, 1);
  EXPECT_EQ(d.test.at("toy_geo")[3].answer, 3);
}

TEST(Mmlu, BadRowsNameFileAndRow) {
  try {
    parse_mmlu_csv("q,a,b,c,d,E\n", "s", "test", "x.csv");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("x.csv: row 1: answer 'E'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_mmlu_csv("q,a,b,c,A\n", "s", "test", "x.csv"), FormatError);
  EXPECT_THROW(parse_csv("\"open,a\n", "x.csv"), FormatError);
  EXPECT_THROW(load_mmlu(kData + "no-such-dir"), IoError);
}

TEST(Mmlu, SubjectBalancedSampleIsDeterministic) {
  const auto d = load_mmlu(kData + "mmlu_index");
  const auto a = sample_mmlu(d, 3, 7, 0);
  const auto b = sample_mmlu(d, 3, 7, 0);
  ASSERT_EQ(a.size(), 6u);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].id, b[i].id);
  EXPECT_EQ(a[0].subject, "toy_geo");
  EXPECT_EQ(a[3].subject, "toy_misc");
  std::set<std::string> ids_other;
  for (int seed = 0; seed < 20; ++seed)
    for (const auto& q : sample_mmlu(d, 3, seed, 0)) ids_other.insert(q.id);
  EXPECT_GT(ids_other.size(), 6u);  // other seeds pick other questions
  EXPECT_EQ(sample_mmlu(d, 0, 7, 0).size(), 10u);
  EXPECT_EQ(sample_mmlu(d, 3, 7, 4).size(), 4u);
}

TEST(Mmlu, PromptLayout) {
  const auto d = load_mmlu(kData + "mmlu_index");
  const auto& q = d.test.at("toy_geo")[0];
  const std::string p0 = render_mmlu_prompt(q, {});
  EXPECT_NE(p0.find("about toy geo."), std::string::npos);
  EXPECT_NE(p0.find("Capital of France?\nA. Paris\nB. Rome\nC. Oslo\nD. Bern\nAnswer:"), std::string::npos);
  EXPECT_EQ(p0.substr(p0.size() - 7), "Answer:");
  const std::string p5 = render_mmlu_prompt(q, d.dev.at("toy_geo"));
  EXPECT_NE(p5.find("Dev one?\nA. w\nB. x\nC. y\nD. z\nAnswer: D\n\nCapital"), std::string::npos);
}

TEST(Mmlu, AnswerExtraction) {
  auto x = [](const char* s) { auto a = extract_mmlu_answer(s); return a ? std::string(1, *a) : std::string("-"); };
  EXPECT_EQ(x("B"), "B");
  EXPECT_EQ(x(" C."), "C");
  EXPECT_EQ(x("**D**"), "D");
  EXPECT_EQ(x("(A) Paris"), "A");
  EXPECT_EQ(x("Answer: C"), "C");
  EXPECT_EQ(x("The answer is B because A and C are wrong."), "B");
  EXPECT_EQ(x("Looking at A and D, the correct answer is (D)."), "D");
  EXPECT_EQ(x("B. Rome is not right; A. Paris"), "B");
  EXPECT_EQ(x("I think it is a trick question."), "-");
  EXPECT_EQ(x("ABBA"), "-");
  EXPECT_EQ(x(""), "-");
}

}  // namespace
}  // namespace quench::eval
