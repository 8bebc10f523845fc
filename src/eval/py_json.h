// quench/eval/py_json.h: "would Python's json.loads accept this text?" for IFEval's json_format.
//
// Python's decoder (CPython Lib/json/decoder.py + scanner.py) is stricter than JSON in some places
// and looser in others (shared reference ifeval-checkers.md §5, json_format): it accepts any top-level
// value, NaN / Infinity / -Infinity, duplicate keys, huge numbers and lone surrogate escapes; it
// rejects trailing commas, single quotes, comments, leading zeros, raw U+0000-001F inside strings,
// a second value, empty text, a leading U+FEFF and whitespace other than space, \t, \n, \r.
#pragma once

#include <string_view>

namespace quench::eval {

/// Result of checking a text with python_json_accepts().
struct PyJsonCheck {
  bool ok = false;           ///< json.loads would return a value
  bool too_deep = false;     ///< nesting passed kMaxDepth: Python raises RecursionError here (flag it)
};

/// Nesting depth at which the check gives up (CPython's default recursion limit is 1000 frames).
inline constexpr int kPyJsonMaxDepth = 900;

/// Checks `text` (code points) against Python json.loads' grammar. Never throws.
PyJsonCheck python_json_accepts(std::u32string_view text);

}  // namespace quench::eval
