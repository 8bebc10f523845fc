// quench/eval/mmlu.cpp: MMLU loading, sampling, prompt and answer extraction (see mmlu.h).
#include "eval/mmlu.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "eval/data_file.h"
#include "eval/rng.h"

namespace quench::eval {

namespace fs = std::filesystem;

std::size_t MmluData::num_test() const {
  std::size_t n = 0;
  for (const auto& [s, v] : test) n += v.size();
  return n;
}
std::size_t MmluData::num_dev() const {
  std::size_t n = 0;
  for (const auto& [s, v] : dev) n += v.size();
  return n;
}

std::vector<std::vector<std::string>> parse_csv(std::string_view text, const std::string& where) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool in_quotes = false, field_started = false;
  std::size_t row_start_line = 1, line = 1;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  auto end_row = [&] {
    row.push_back(std::move(field));
    field.clear();
    if (!(row.size() == 1 && row[0].empty())) rows.push_back(std::move(row));
    row.clear();
    field_started = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && !field_started) {
      in_quotes = true;
      field_started = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      // CRLF: the '\n' ends the row
    } else if (c == '\n') {
      end_row();
      row_start_line = ++line;
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  if (in_quotes) throw FormatError(where + ": line " + std::to_string(row_start_line) + ": unterminated quoted field");
  if (field_started || !row.empty()) end_row();
  return rows;
}

std::vector<MmluQuestion> parse_mmlu_csv(std::string_view text, const std::string& subject,
                                         const std::string& split, const std::string& where) {
  auto rows = parse_csv(text, where);
  std::vector<MmluQuestion> out;
  std::size_t first = 0;
  if (!rows.empty() && rows[0].size() == 6 && rows[0][0] == "question" && rows[0][5] == "answer") first = 1;
  for (std::size_t r = first; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const std::string at = where + ": row " + std::to_string(r + 1);
    if (row.size() != 6)
      throw FormatError(at + ": expected 6 fields (question, 4 choices, answer), got " + std::to_string(row.size()));
    std::string a = row[5];
    a.erase(std::remove_if(a.begin(), a.end(), [](unsigned char c) { return std::isspace(c); }), a.end());
    int ans = -1;
    if (a.size() == 1 && a[0] >= 'A' && a[0] <= 'D') ans = a[0] - 'A';
    else if (a.size() == 1 && a[0] >= '0' && a[0] <= '3') ans = a[0] - '0';
    if (ans < 0) throw FormatError(at + ": answer '" + row[5] + "' is neither a letter A-D nor an index 0-3");
    MmluQuestion q;
    q.id = subject + "/" + split + "/" + std::to_string(out.size());
    q.subject = subject;
    q.question = row[0];
    for (int k = 0; k < 4; ++k) q.choices[k] = row[1 + k];
    q.answer = ans;
    out.push_back(std::move(q));
  }
  return out;
}

namespace {

void load_split(const fs::path& dir, const std::string& suffix, const std::string& split,
                std::map<std::string, std::vector<MmluQuestion>>& into) {
  if (!fs::is_directory(dir)) return;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.size() > suffix.size() && name.ends_with(suffix)) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    const std::string name = f.filename().string();
    const std::string subject = name.substr(0, name.size() - suffix.size());
    into[subject] = parse_mmlu_csv(read_data_file(f), subject, split, f.string());
  }
}

}  // namespace

MmluData load_mmlu(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw IoError(dir.string() + ": MMLU data directory not found");
  MmluData d;
  const bool nested = fs::is_directory(dir / "test");
  load_split(nested ? dir / "test" : dir, "_test.csv", "test", d.test);
  load_split(nested ? dir / "dev" : dir, "_dev.csv", "dev", d.dev);
  if (d.test.empty())
    throw FormatError(dir.string() + ": no SUBJECT_test.csv files found (looked in " +
                      (nested ? (dir / "test").string() : dir.string()) + ")");
  return d;
}

std::vector<MmluQuestion> sample_mmlu(const MmluData& data, int per_subject, std::uint64_t seed, int limit) {
  std::vector<MmluQuestion> out;
  for (const auto& [subject, qs] : data.test) {
    std::vector<std::size_t> idx(qs.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    if (per_subject > 0 && static_cast<std::size_t>(per_subject) < qs.size()) {
      SplitMix64 rng(seed ^ fnv1a64(subject));
      for (std::size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
      idx.resize(static_cast<std::size_t>(per_subject));
      std::sort(idx.begin(), idx.end());
    }
    for (std::size_t i : idx) out.push_back(qs[i]);
  }
  if (limit > 0 && out.size() > static_cast<std::size_t>(limit)) out.resize(static_cast<std::size_t>(limit));
  return out;
}

namespace {

std::string subject_words(const std::string& s) {
  std::string r = s;
  std::replace(r.begin(), r.end(), '_', ' ');
  return r;
}

void append_question(std::string& p, const MmluQuestion& q) {
  p += q.question;
  for (int k = 0; k < 4; ++k) {
    p += '\n';
    p += static_cast<char>('A' + k);
    p += ". ";
    p += q.choices[k];
  }
  p += "\nAnswer:";
}

}  // namespace

std::string render_mmlu_prompt(const MmluQuestion& q, const std::vector<MmluQuestion>& shots) {
  std::string p = "The following are multiple choice questions (with answers) about " + subject_words(q.subject) +
                  ". Reply with the letter (A, B, C or D) of the correct answer.\n\n";
  for (const auto& s : shots) {
    append_question(p, s);
    p += ' ';
    p += static_cast<char>('A' + s.answer);
    p += "\n\n";
  }
  append_question(p, q);
  return p;
}

namespace {

bool is_letter_ascii(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

// Standalone A-D at i: not part of a longer ASCII word.
bool standalone_option(std::string_view s, std::size_t i) {
  if (s[i] < 'A' || s[i] > 'D') return false;
  const bool before = i > 0 && (is_letter_ascii(s[i - 1]) || std::isdigit(static_cast<unsigned char>(s[i - 1])) || s[i - 1] == '\'');
  const bool after = i + 1 < s.size() && (is_letter_ascii(s[i + 1]) || std::isdigit(static_cast<unsigned char>(s[i + 1])) || s[i + 1] == '\'');
  return !before && !after;
}

}  // namespace

std::optional<char> extract_mmlu_answer(std::string_view response) {
  std::string lower(response);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // 1. The first standalone A-D after "answer".
  for (std::size_t p = lower.find("answer"); p != std::string::npos; p = lower.find("answer", p + 1)) {
    for (std::size_t i = p + 6; i < response.size(); ++i) {
      if (standalone_option(response, i)) return response[i];
      // Stop at the end of the sentence that holds "answer".
      if (response[i] == '\n' && i > p + 7) break;
    }
  }
  // 2. The response's only standalone letter A-D (markup and punctuation aside).
  std::optional<char> single;
  int count = 0;
  for (std::size_t i = 0; i < response.size(); ++i)
    if (standalone_option(response, i)) {
      if (!single || *single != response[i]) ++count;
      single = response[i];
    }
  if (count == 1) return single;
  // 3. A leading option label: "B.", "(B)", "B)", "**B**".
  std::size_t i = 0;
  while (i < response.size() && (std::isspace(static_cast<unsigned char>(response[i])) || response[i] == '*' || response[i] == '('))
    ++i;
  if (i < response.size() && standalone_option(response, i)) return response[i];
  return std::nullopt;
}

}  // namespace quench::eval
