// quench/server/response_json.cpp: usage, stop reasons and logprobs as OpenAI JSON.
#include "server/response_json.h"

#include <algorithm>
#include <cmath>

#include "server/text_io.h"

namespace quench::server {

nlohmann::json usage_json(int prompt_tokens, int completion_tokens, int cached_tokens) {
  nlohmann::json u = {{"prompt_tokens", prompt_tokens},
                      {"completion_tokens", completion_tokens},
                      {"total_tokens", prompt_tokens + completion_tokens},
                      {"prompt_tokens_details", nullptr}};
  if (cached_tokens > 0) u["prompt_tokens_details"] = {{"cached_tokens", cached_tokens}};
  return u;
}

nlohmann::json stop_reason_json(const std::optional<std::string>& stop_reason, const SamplingParams& params) {
  if (!stop_reason) return nullptr;
  for (const auto& s : params.stop)
    if (s == *stop_reason) return *stop_reason;
  // Not one of the stop strings: the engine reports stop token ids in decimal.
  try {
    size_t used = 0;
    long long id = std::stoll(*stop_reason, &used);
    if (used == stop_reason->size()) return id;
  } catch (const std::exception&) {
  }
  return *stop_reason;
}

nlohmann::json finish_reason_json(const std::optional<FinishReason>& r) {
  if (!r) return nullptr;
  return finish_reason_name(*r);
}

double clamp_logprob(float v) {
  if (std::isnan(v)) return -9999.0;
  return std::max(static_cast<double>(v), -9999.0);
}

namespace {

nlohmann::json bytes_of(const std::string& s) {
  nlohmann::json b = nlohmann::json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

nlohmann::json chat_logprobs_content(const Tokenizer& tok, const std::vector<TokenLogprob>& lps, int top_n) {
  nlohmann::json content = nlohmann::json::array();
  for (const auto& lp : lps) {
    std::string t = token_text(tok, lp.token_id);
    nlohmann::json top = nlohmann::json::array();
    for (size_t k = 0; k < lp.top.size() && static_cast<int>(k) < top_n; ++k) {
      std::string tt = token_text(tok, lp.top[k].first);
      top.push_back({{"token", tt}, {"logprob", clamp_logprob(lp.top[k].second)}, {"bytes", bytes_of(tt)}});
    }
    content.push_back({{"token", t}, {"logprob", clamp_logprob(lp.logprob)}, {"bytes", bytes_of(t)}, {"top_logprobs", top}});
  }
  return content;
}

nlohmann::json completion_logprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& lps, int top_n,
                                   size_t offset) {
  nlohmann::json tokens = nlohmann::json::array(), token_lps = nlohmann::json::array(),
                 tops = nlohmann::json::array(), offsets = nlohmann::json::array();
  for (const auto& lp : lps) {
    std::string t = token_text(tok, lp.token_id);
    tokens.push_back(t);
    token_lps.push_back(clamp_logprob(lp.logprob));
    nlohmann::json top = nlohmann::json::object();
    top[t] = clamp_logprob(lp.logprob);
    for (size_t k = 0; k < lp.top.size() && static_cast<int>(k) < top_n; ++k) {
      std::string tt = token_text(tok, lp.top[k].first);
      if (!top.contains(tt)) top[tt] = clamp_logprob(lp.top[k].second);
    }
    tops.push_back(top_n > 0 ? top : nlohmann::json(nullptr));
    offsets.push_back(offset);
    offset += t.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

}  // namespace quench::server
