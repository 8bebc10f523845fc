// quench/quant/calibration_text.cpp: see calibration_text.h.
#include "quant/calibration_text.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"    // FormatError
#include "io/text_file.h"  // read_text_file

namespace quench {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool is_jsonl(const std::filesystem::path& p) {
  const auto ext = p.extension().string();
  return ext == ".jsonl" || ext == ".json" || ext == ".ndjson";
}

}  // namespace

std::vector<std::string> load_calibration_texts(const std::filesystem::path& path, int max_samples) {
  const std::string content = read_text_file(path);
  std::vector<std::string> out;
  auto full = [&] { return max_samples > 0 && static_cast<int>(out.size()) >= max_samples; };
  if (is_jsonl(path)) {
    std::size_t pos = 0;
    int line_no = 0;
    while (pos < content.size() && !full()) {
      auto nl = content.find('\n', pos);
      if (nl == std::string::npos) nl = content.size();
      const std::string line = trim(content.substr(pos, nl - pos));
      pos = nl + 1;
      ++line_no;
      if (line.empty()) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw FormatError(fmt::format("{}:{}: bad JSON: {}", path.string(), line_no, e.what()));
      }
      std::string text;
      bool found = false;
      for (const char* key : {"text", "article", "content", "prompt"}) {
        if (j.is_object() && j.contains(key) && j[key].is_string()) {
          text = j[key].get<std::string>();
          found = true;
          break;
        }
      }
      if (!found)
        throw FormatError(fmt::format("{}:{}: expected an object with a string field \"text\" "
                                      "(or \"article\", \"content\", \"prompt\")", path.string(), line_no));
      text = trim(text);
      if (!text.empty()) out.push_back(text);
    }
  } else {
    std::string cur;
    std::size_t pos = 0;
    auto flush = [&] {
      const std::string t = trim(cur);
      if (!t.empty() && !full()) out.push_back(t);
      cur.clear();
    };
    while (pos <= content.size()) {
      auto nl = content.find('\n', pos);
      if (nl == std::string::npos) nl = content.size();
      const std::string line = content.substr(pos, nl - pos);
      pos = nl + 1;
      if (trim(line).empty()) flush();
      else cur += line + "\n";
    }
    flush();
  }
  if (out.empty()) throw FormatError(fmt::format("{}: no calibration text found", path.string()));
  return out;
}

const std::vector<std::string>& builtin_calibration_texts() {
  static const std::vector<std::string> texts = {
      "The river had been rising for three days before anyone in the village thought to move the "
      "grain stores. By the time the mayor called a meeting, the lower road was already under a "
      "foot of brown water, and the children had taken to sailing paper boats across the square.",
      "Photosynthesis converts light energy into chemical energy. In the chloroplasts of plant "
      "cells, chlorophyll absorbs mostly blue and red light, and the energy drives the synthesis of "
      "glucose from carbon dioxide and water, releasing oxygen as a by-product.",
      "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n"
      "print([fibonacci(i) for i in range(10)])",
      "Question: A shop sells pencils at 3 for 45 cents. How much do 12 pencils cost?\n"
      "Answer: 12 pencils are 4 groups of 3, so they cost 4 x 45 = 180 cents, which is $1.80.",
      "User: Can you recommend a good way to learn a new language?\nAssistant: Practise a little "
      "every day, read things you enjoy, speak with native speakers as early as you can, and keep "
      "a notebook of phrases rather than single words.",
      "Ingredients: 200 g flour, 2 eggs, 300 ml milk, a pinch of salt, butter for the pan. Whisk "
      "the flour, eggs and salt, add the milk slowly until smooth, rest the batter for 30 minutes, "
      "then cook thin pancakes in a hot buttered pan.",
      "In 1869 the transcontinental railroad was completed in the United States, linking the "
      "eastern network with the Pacific coast. The journey from New York to San Francisco fell from "
      "months to about a week.",
      "SELECT customer_id, SUM(amount) AS total\nFROM orders\nWHERE created_at >= '2024-01-01'\n"
      "GROUP BY customer_id\nORDER BY total DESC\nLIMIT 10;",
      "The derivative of x^3 + 2x is 3x^2 + 2. Setting it to zero has no real solution, so the "
      "function is strictly increasing on the whole real line.",
      "Les montagnes étaient couvertes de neige, et le village dormait encore quand le boulanger "
      "alluma son four. Der Zug nach Berlin fährt um acht Uhr ab. El mercado abre los sábados.",
      "1. Turn off the power at the breaker.\n2. Remove the old switch plate.\n3. Disconnect the "
      "wires, noting which terminal each was on.\n4. Connect the new switch the same way.",
      "Dear team, the quarterly review is moved to Thursday at 10:00. Please bring your updated "
      "figures and a short summary of open risks. Thanks, Maria",
  };
  return texts;
}

const std::vector<std::string>& builtin_heldout_texts() {
  static const std::vector<std::string> texts = {
      "The old lighthouse keeper climbed the spiral stairs every evening at dusk. He trimmed the "
      "wick, polished the great lens, and watched the beam sweep across the dark water toward the "
      "rocks where so many ships had been lost.",
      "Water boils at 100 degrees Celsius at sea level, but at higher altitudes the air pressure is "
      "lower, so it boils at a lower temperature. This is why cooking pasta in the mountains takes "
      "longer.",
      "Question: Tom has 24 apples and gives a third of them to his sister. How many does he keep?\n"
      "Answer: A third of 24 is 8, so he keeps 24 - 8 = 16 apples.",
      "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n"
      "        if n % i == 0:\n            return False\n        i += 1\n    return True",
      "User: What is the capital of Australia?\nAssistant: The capital of Australia is Canberra, "
      "not Sydney as many people assume.",
      "The committee reviewed the proposal in detail and agreed to fund the first phase, on the "
      "condition that a progress report is delivered within six months.",
  };
  return texts;
}

}  // namespace quench
