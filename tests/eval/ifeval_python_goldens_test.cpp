// Tests src/eval/ifeval_* against verdicts computed by Python's own re / json / str on 1410
// responses (tests/data/eval/ifeval_python/, see its README): every stdlib-only checker, strict
// and loose, must agree with the Python reference.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "eval/ifeval_registry.h"
#include "eval/ifeval_task.h"

namespace quench::eval {
namespace {

TEST(IfevalPythonGoldens, EveryVerdictMatchesPython) {
  std::ifstream f(std::string(QUENCH_SOURCE_DIR) + "/tests/data/eval/ifeval_python/goldens.jsonl");
  ASSERT_TRUE(f) << "goldens.jsonl missing";
  std::string line;
  std::size_t records = 0, verdicts = 0, mismatches = 0;
  std::map<std::string, int> per_id_mismatch;
  while (std::getline(f, line)) {
    const auto rec = nlohmann::json::parse(line);
    IfevalItem it;
    it.key = rec["key"].dump();
    for (const auto& v : rec["verdicts"]) {
      it.instruction_ids.push_back(v["id"]);
      it.kwargs.push_back(v["kwargs"]);
      it.checkers.push_back(ifeval::make_checker(v["id"], v["kwargs"], "goldens key " + it.key));
    }
    const auto got = judge_ifeval(it, rec["response"].get<std::string>());
    for (std::size_t i = 0; i < got.size(); ++i) {
      const auto& want = rec["verdicts"][i];
      ++verdicts;
      if (got[i].strict != want["strict"].get<bool>() || got[i].loose != want["loose"].get<bool>()) {
        ++mismatches;
        if (++per_id_mismatch[got[i].id] <= 2)
          ADD_FAILURE() << got[i].id << " " << want["kwargs"].dump() << " key " << it.key << ": quench strict/loose "
                        << got[i].strict << "/" << got[i].loose << ", Python " << want["strict"] << "/" << want["loose"]
                        << "\nresponse: " << rec["response"].dump();
      }
    }
    ++records;
  }
  EXPECT_EQ(records, 1410u);
  EXPECT_EQ(verdicts, 1986u);
  EXPECT_EQ(mismatches, 0u);
}

}  // namespace
}  // namespace quench::eval
