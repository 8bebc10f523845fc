// quench/eval/compare.cpp: paired bootstrap deltas between two reports (see compare.h).
#include "eval/compare.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "core/error.h"
#include "eval/rng.h"

namespace quench::eval {

namespace {

// Per item: numerator and denominator of its contribution (0/1 over 1, or followed/instructions).
using Contribution = std::pair<double, double>;
using Extractor = Contribution (*)(const nlohmann::json& item);

struct MetricSpec {
  const char* task;
  const char* metric;
  Extractor extract;
};

Contribution flag(const nlohmann::json& it, const char* key) { return {it.value(key, false) ? 1.0 : 0.0, 1.0}; }
Contribution inst(const nlohmann::json& it, const char* key) {
  double num = 0, den = 0;
  for (const auto& i : it.value("instructions", nlohmann::json::array())) {
    num += i.value(key, false) ? 1.0 : 0.0;
    den += 1.0;
  }
  return {num, den};
}

const MetricSpec kMetrics[] = {
    {"mmlu", "accuracy", [](const nlohmann::json& it) { return flag(it, "correct"); }},
    {"humaneval", "syntactic", [](const nlohmann::json& it) { return flag(it, "syntactic"); }},
    {"humaneval", "functional", [](const nlohmann::json& it) { return flag(it, "functional"); }},
    {"ifeval", "prompt_level_strict_acc", [](const nlohmann::json& it) { return flag(it, "follow_all_strict"); }},
    {"ifeval", "inst_level_strict_acc", [](const nlohmann::json& it) { return inst(it, "strict"); }},
    {"ifeval", "prompt_level_loose_acc", [](const nlohmann::json& it) { return flag(it, "follow_all_loose"); }},
    {"ifeval", "inst_level_loose_acc", [](const nlohmann::json& it) { return inst(it, "loose"); }},
};

std::map<std::string, const nlohmann::json*> by_id(const nlohmann::json& items) {
  std::map<std::string, const nlohmann::json*> m;
  for (const auto& it : items) {
    const auto& id = it["id"];
    m[id.is_string() ? id.get<std::string>() : id.dump()] = &it;
  }
  return m;
}

double ratio(double num, double den) { return den > 0 ? 100.0 * num / den : 0.0; }

}  // namespace

std::vector<MetricDelta> compare_reports(const nlohmann::json& a, const nlohmann::json& b, int resamples,
                                         std::uint64_t seed) {
  std::vector<MetricDelta> out;
  for (const auto& spec : kMetrics) {
    const auto& ta = a["tasks"];
    const auto& tb = b["tasks"];
    if (!ta.contains(spec.task) || !tb.contains(spec.task)) continue;
    static const nlohmann::json kNoItems = nlohmann::json::array();
    const auto& ia = ta[spec.task].contains("items") ? ta[spec.task]["items"] : kNoItems;
    const auto& ib = tb[spec.task].contains("items") ? tb[spec.task]["items"] : kNoItems;
    const auto ma = by_id(ia);  // pointers into ia / ib, which outlive the maps
    const auto mb = by_id(ib);
    std::vector<Contribution> ca, cb;
    std::size_t unmatched = 0;
    for (const auto& [id, item] : ma) {
      auto it = mb.find(id);
      if (it == mb.end()) {
        ++unmatched;
        continue;
      }
      ca.push_back(spec.extract(*item));
      cb.push_back(spec.extract(*it->second));
    }
    for (const auto& [id, item] : mb)
      if (!ma.count(id)) ++unmatched;
    MetricDelta d;
    d.task = spec.task;
    d.metric = spec.metric;
    d.n = ca.size();
    d.unmatched = unmatched;
    if (d.n == 0) {
      out.push_back(d);
      continue;
    }
    double na = 0, da = 0, nb = 0, db = 0;
    for (std::size_t i = 0; i < d.n; ++i) {
      na += ca[i].first; da += ca[i].second; nb += cb[i].first; db += cb[i].second;
    }
    d.a = ratio(na, da);
    d.b = ratio(nb, db);
    d.delta = d.b - d.a;
    SplitMix64 rng(seed ^ fnv1a64(std::string(spec.task) + "/" + spec.metric));
    std::vector<double> deltas;
    deltas.reserve(static_cast<std::size_t>(resamples));
    for (int r = 0; r < resamples; ++r) {
      double sna = 0, sda = 0, snb = 0, sdb = 0;
      for (std::size_t k = 0; k < d.n; ++k) {
        const std::size_t i = rng.below(d.n);
        sna += ca[i].first; sda += ca[i].second; snb += cb[i].first; sdb += cb[i].second;
      }
      deltas.push_back(ratio(snb, sdb) - ratio(sna, sda));
    }
    std::sort(deltas.begin(), deltas.end());
    auto pct = [&](double q) {
      const double pos = q * static_cast<double>(deltas.size() - 1);
      const auto lo = static_cast<std::size_t>(pos);
      const std::size_t hi = std::min(lo + 1, deltas.size() - 1);
      return deltas[lo] + (pos - static_cast<double>(lo)) * (deltas[hi] - deltas[lo]);
    };
    d.ci_low = pct(0.025);
    d.ci_high = pct(0.975);
    out.push_back(d);
  }
  if (out.empty()) throw FormatError("eval compare: the two reports have no task in common");
  return out;
}

std::string render_compare(const std::string& name_a, const std::string& name_b, const std::vector<MetricDelta>& ds) {
  std::ostringstream out;
  out << "A = " << name_a << "\nB = " << name_b << "\n\n";
  out << "| task | metric | A | B | delta (B-A) | 95% CI (paired bootstrap) | n |\n";
  out << "|---|---|---|---|---|---|---|\n";
  char buf[256];
  for (const auto& d : ds) {
    const bool sig = d.n > 0 && (d.ci_low > 0 || d.ci_high < 0);
    std::snprintf(buf, sizeof buf, "| %s | %s | %.1f | %.1f | %+.1f%s | [%+.1f, %+.1f] | %zu%s |\n", d.task.c_str(),
                  d.metric.c_str(), d.a, d.b, d.delta, sig ? " *" : "", d.ci_low, d.ci_high, d.n,
                  d.unmatched ? (" (" + std::to_string(d.unmatched) + " unmatched)").c_str() : "");
    out << buf;
  }
  out << "\n* the 95% interval excludes 0.\n";
  return out.str();
}

}  // namespace quench::eval
