// quench/eval/ifeval_registry.h: instruction id + kwargs -> a ready checker (INSTRUCTION_DICT).
//
// The ids and kwargs are those of google-research instructions_registry.py (shared reference
// ifeval-checkers.md §1, §5). kwargs are validated when the checker is built: null values are
// dropped (the Hugging Face copy pads every record with nulls), a missing required key, a value of
// the wrong JSON type or a relation other than "less than"/"at least" is a FormatError naming
// `where` and the key (the reference would invent a random value instead).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/ifeval_checks.h"

namespace quench::eval::ifeval {

/// A checker bound to its kwargs: response (code points) -> verdict.
using Checker = std::function<CheckResult(Text)>;

/// Builds the checker for `id` with `kwargs` (a JSON object). `where` prefixes error messages,
/// e.g. "input_data.jsonl:12: kwargs[1]". Throws FormatError (unknown id, bad kwargs).
Checker make_checker(const std::string& id, const nlohmann::json& kwargs, const std::string& where);

/// The 25 registered instruction ids, in registry order.
const std::vector<std::string>& checker_ids();

}  // namespace quench::eval::ifeval
