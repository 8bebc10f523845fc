// quench/server/protocol.cpp: request parsing and validation (vLLM protocol.py rules).
#include "server/protocol.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "server/api_error.h"
#include "server/json_fields.h"

namespace quench::server {
namespace {

void check_range(double v, double lo, double hi, const std::string& name, bool lo_open = false) {
  bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
  if (!ok)
    throw bad_request(fmt::format("{} must be in {}{}, {}], got {}.", name, lo_open ? "(" : "[", lo, hi, v), name);
}

std::vector<std::string> parse_stop(const JsonFields& f) {
  const auto* v = f.get("stop");
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string())
        throw bad_request(fmt::format("'stop[{}]' must be a string, got {}", i, json_type_name((*v)[i])), "stop");
      out.push_back((*v)[i].get<std::string>());
    }
  } else {
    throw bad_request(fmt::format("'stop' must be a string or an array of strings, got {}", json_type_name(*v)),
                      "stop");
  }
  for (const auto& s : out)
    if (s.empty()) throw bad_request("'stop' must not contain empty strings", "stop");
  return out;
}

std::vector<int32_t> parse_token_list(const nlohmann::json& v, const std::string& name, int vocab_size) {
  if (!v.is_array()) throw bad_request(fmt::format("'{}' must be an array of integers, got {}", name, json_type_name(v)), name);
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const auto& e = v[i];
    if (!e.is_number_integer() && !e.is_number_unsigned())
      throw bad_request(fmt::format("'{}[{}]' must be an integer token id, got {}", name, i, json_type_name(e)), name);
    int64_t id = e.get<int64_t>();
    if (id < 0 || id >= vocab_size)
      throw bad_request(fmt::format("'{}[{}]' = {} is out of vocabulary range [0, {})", name, i, id, vocab_size), name);
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

/// Structured output (openai-api.md §1.4) needs a constrained decoder quench does not have: a request
/// asking for it gets 501 naming the field rather than unconstrained text that looks like an answer.
/// `response_format: {"type": "text"}` is the default and accepted.
void check_structured_output(const JsonFields& f) {
  if (const auto* rf = f.get("response_format"); rf && !rf->is_null()) {
    if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string())
      throw bad_request("response_format must be an object with a string 'type' (text, json_object, json_schema)",
                        "response_format");
    const std::string type = (*rf)["type"].get<std::string>();
    if (type == "json_object" || type == "json_schema" || type == "structural_tag")
      throw ApiError(501, "NotImplementedError",
                     fmt::format("response_format type '{}' (structured output) is not supported by this server", type),
                     "response_format");
    if (type != "text")
      throw bad_request(fmt::format("response_format type '{}' is not one of text, json_object, json_schema", type),
                        "response_format");
  }
  for (const char* key : {"structured_outputs", "guided_json", "guided_regex", "guided_choice", "guided_grammar"})
    if (const auto* v = f.get(key); v && !v->is_null())
      throw ApiError(501, "NotImplementedError",
                     fmt::format("'{}' (structured output) is not supported by this server", key), key);
}

void parse_common(const JsonFields& f, CommonRequest& r, int vocab_size) {
  SamplingParams& p = r.params;
  check_structured_output(f);
  r.model = f.opt_string("model");
  if (auto v = f.opt_int("n")) {
    if (*v < 1 || *v > kMaxN) throw bad_request(fmt::format("n must be in [1, {}], got {}.", kMaxN, *v), "n");
    p.n = static_cast<int>(*v);
  }
  if (auto v = f.opt_number("temperature")) {
    check_range(*v, 0.0, 2.0, "temperature");
    // vLLM raises tiny positive temperatures to 0.01 to avoid overflow in logits / T.
    p.temperature = (*v > 0.0 && *v < 0.01) ? 0.01f : static_cast<float>(*v);
  }
  if (auto v = f.opt_number("top_p")) {
    check_range(*v, 0.0, 1.0, "top_p", /*lo_open=*/true);
    p.top_p = static_cast<float>(*v);
  }
  if (auto v = f.opt_int("top_k")) {
    if (*v < -1 || *v > std::numeric_limits<int32_t>::max())
      throw bad_request(fmt::format("top_k must be -1 (disable), 0 (disable) or at least 1, got {}.", *v), "top_k");
    p.top_k = static_cast<int>(*v);
  }
  if (auto v = f.opt_number("min_p")) {
    check_range(*v, 0.0, 1.0, "min_p");
    p.min_p = static_cast<float>(*v);
  }
  if (auto v = f.opt_number("presence_penalty")) {
    check_range(*v, -2.0, 2.0, "presence_penalty");
    p.presence_penalty = static_cast<float>(*v);
  }
  if (auto v = f.opt_number("frequency_penalty")) {
    check_range(*v, -2.0, 2.0, "frequency_penalty");
    p.frequency_penalty = static_cast<float>(*v);
  }
  if (auto v = f.opt_number("repetition_penalty")) {
    if (!std::isfinite(*v) || *v <= 0.0)
      throw bad_request(fmt::format("repetition_penalty must be a positive finite number, got {}.", *v),
                        "repetition_penalty");
    p.repetition_penalty = static_cast<float>(*v);
  }
  if (auto v = f.opt_int("seed"); v && *v != -1) p.seed = static_cast<uint64_t>(*v);
  if (auto v = f.opt_int("max_completion_tokens")) r.max_tokens = *v;
  else if (auto w = f.opt_int("max_tokens")) r.max_tokens = *w;
  if (r.max_tokens && *r.max_tokens < 1)
    throw bad_request(fmt::format("max_tokens must be at least 1, got {}.", *r.max_tokens),
                      f.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens");
  if (auto v = f.opt_int("min_tokens")) {
    if (*v < 0) throw bad_request(fmt::format("min_tokens must be non-negative, got {}.", *v), "min_tokens");
    if (r.max_tokens && *v > *r.max_tokens)
      throw bad_request(fmt::format("min_tokens must be less than or equal to max_tokens={}, got {}.", *r.max_tokens, *v),
                        "min_tokens");
    p.min_tokens = static_cast<int>(*v);
  }
  p.stop = parse_stop(f);
  if (const auto* v = f.get("stop_token_ids")) p.stop_token_ids = parse_token_list(*v, "stop_token_ids", vocab_size);
  if (auto v = f.opt_bool("ignore_eos")) p.ignore_eos = *v;
  if (auto v = f.opt_bool("skip_special_tokens")) p.skip_special_tokens = *v;
  if (auto v = f.opt_bool("include_stop_str_in_output")) p.include_stop_str_in_output = *v;
  if (const auto* v = f.get("logit_bias")) {
    if (!v->is_object())
      throw bad_request(fmt::format("'logit_bias' must be an object mapping token ids to numbers, got {}",
                                    json_type_name(*v)), "logit_bias");
    for (const auto& [key, val] : v->items()) {
      int64_t id = 0;
      size_t used = 0;
      try {
        id = std::stoll(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != key.size())
        throw bad_request(fmt::format("logit_bias contains key(s) that cannot be converted to integer token ids: '{}'", key),
                          "logit_bias");
      if (id < 0 || id >= vocab_size)
        throw bad_request(fmt::format("token_id(s) [{}] in logit_bias contain out-of-vocab token ids (vocab size {})",
                                      id, vocab_size), "logit_bias");
      if (!val.is_number())
        throw bad_request(fmt::format("logit_bias['{}'] must be a number, got {}", key, json_type_name(val)), "logit_bias");
      double b = val.get<double>();
      if (!std::isfinite(b)) throw bad_request(fmt::format("logit_bias['{}'] must be finite", key), "logit_bias");
      p.logit_bias[static_cast<int32_t>(id)] = static_cast<float>(std::clamp(b, -100.0, 100.0));
    }
  }
  if (auto v = f.opt_bool("stream")) r.stream = *v;
  if (const auto* so = f.get("stream_options")) {
    if (!r.stream)
      throw bad_request("Stream options can only be defined when `stream=True`.", "stream_options");
    JsonFields sf(*so, "stream_options.", "stream_options");
    r.include_usage = sf.opt_bool("include_usage").value_or(true);
    r.continuous_usage_stats = sf.opt_bool("continuous_usage_stats").value_or(false);
  }
}

/// Joins text parts of a content array (OpenAI part list) with "\n".
std::string content_text(const nlohmann::json& c, const std::string& where) {
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array())
    throw bad_request(fmt::format("'{}.content' must be a string or an array of content parts, got {}", where,
                                  json_type_name(c)), where + ".content");
  std::string out;
  for (size_t i = 0; i < c.size(); ++i) {
    std::string pw = fmt::format("{}.content[{}]", where, i);
    JsonFields part(c[i], pw + ".", pw);
    auto type = part.opt_string("type");
    if (!type) throw bad_request(fmt::format("'{}.type' is required", pw), pw + ".type");
    if (*type != "text")
      throw bad_request(fmt::format("'{}.type' = '{}' is not supported: this model takes text only", pw, *type),
                        pw + ".type");
    auto text = part.opt_string("text");
    if (!text) throw bad_request(fmt::format("'{}.text' is required for a text part", pw), pw + ".text");
    if (i) out += '\n';
    out += *text;
  }
  return out;
}

ParsedMessage parse_message(const nlohmann::json& m, size_t i) {
  std::string where = fmt::format("messages[{}]", i);
  JsonFields f(m, where + ".", where);
  ParsedMessage out;
  auto role = f.opt_string("role");
  if (!role) throw bad_request(fmt::format("'{}.role' is required", where), where + ".role");
  static const char* kRoles[] = {"system", "developer", "user", "assistant", "tool", "function"};
  bool known = false;
  for (const char* r : kRoles) known |= (*role == r);
  if (!known)
    throw bad_request(fmt::format("'{}.role' = '{}' is not one of system, developer, user, assistant, tool", where,
                                  *role), where + ".role");
  out.role = *role == "developer" ? "system" : *role;
  const auto* content = f.get("content");
  if (!content) {
    // Only an assistant turn that carries tool calls may omit its content (OpenAI schema).
    if (!(out.role == "assistant" && f.has("tool_calls")))
      throw bad_request(fmt::format("'{}.content' is required for role '{}'", where, *role), where + ".content");
  } else {
    out.content = content_text(*content, where);
  }
  if (auto r = f.opt_string("reasoning")) out.reasoning = *r;
  else if (auto rc = f.opt_string("reasoning_content")) out.reasoning = *rc;
  return out;
}

}  // namespace

ChatCompletionRequest parse_chat_request(const nlohmann::json& body, const SamplingParams& defaults, int vocab_size) {
  JsonFields f(body, "", "request body");
  ChatCompletionRequest r;
  r.params = defaults;
  parse_common(f, r, vocab_size);
  const auto* msgs = f.get("messages");
  if (!msgs) throw bad_request("'messages' is required", "messages");
  if (!msgs->is_array())
    throw bad_request(fmt::format("'messages' must be an array, got {}", json_type_name(*msgs)), "messages");
  if (msgs->empty()) throw bad_request("'messages' must contain at least one message", "messages");
  for (size_t i = 0; i < msgs->size(); ++i) r.messages.push_back(parse_message((*msgs)[i], i));
  if (auto v = f.opt_bool("add_generation_prompt")) r.add_generation_prompt = *v;
  if (auto v = f.opt_bool("continue_final_message")) r.continue_final_message = *v;
  if (r.add_generation_prompt && r.continue_final_message)
    throw bad_request("Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
                      "continue_final_message");
  if (auto v = f.opt_bool("include_reasoning")) r.include_reasoning = *v;
  if (const auto* kw = f.get("chat_template_kwargs")) {
    JsonFields kf(*kw, "chat_template_kwargs.", "chat_template_kwargs");
    if (auto t = kf.opt_bool("enable_thinking")) r.enable_thinking = *t;
  }
  if (auto v = f.opt_bool("logprobs")) r.logprobs = *v;
  if (auto v = f.opt_int("top_logprobs")) {
    if (*v < 0 || *v > kMaxLogprobs)
      throw bad_request(fmt::format("top_logprobs must be in [0, {}], got {}.", kMaxLogprobs, *v), "top_logprobs");
    if (*v > 0 && !r.logprobs)
      throw bad_request("when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs");
    r.top_logprobs = static_cast<int>(*v);
  }
  if (r.logprobs) r.params.logprobs = r.top_logprobs;
  if (const auto* tc = f.get("tool_choice"); tc && !f.has("tools"))
    throw bad_request("When using `tool_choice`, `tools` must be set.", "tool_choice");
  if (f.has("tools"))
    throw ApiError(501, "NotImplementedError", "'tools' (function calling) is not supported by this server", "tools");
  return r;
}

CompletionRequest parse_completion_request(const nlohmann::json& body, const SamplingParams& defaults, int vocab_size) {
  JsonFields f(body, "", "request body");
  CompletionRequest r;
  r.params = defaults;
  parse_common(f, r, vocab_size);
  const auto* prompt = f.get("prompt");
  if (!prompt) throw bad_request("'prompt' is required", "prompt");
  auto is_int = [](const nlohmann::json& v) { return v.is_number_integer() || v.is_number_unsigned(); };
  if (prompt->is_string()) {
    r.prompts.emplace_back(prompt->get<std::string>());
  } else if (prompt->is_array()) {
    if (prompt->empty()) throw bad_request("'prompt' must not be empty", "prompt");
    if (is_int((*prompt)[0])) {
      r.prompts.emplace_back(parse_token_list(*prompt, "prompt", vocab_size));
    } else {
      for (size_t i = 0; i < prompt->size(); ++i) {
        const auto& e = (*prompt)[i];
        if (e.is_string()) r.prompts.emplace_back(e.get<std::string>());
        else if (e.is_array()) r.prompts.emplace_back(parse_token_list(e, fmt::format("prompt[{}]", i), vocab_size));
        else
          throw bad_request(fmt::format("'prompt[{}]' must be a string or an array of token ids, got {}", i,
                                        json_type_name(e)), "prompt");
      }
    }
  } else {
    throw bad_request(fmt::format("'prompt' must be a string, an array of strings or token ids, got {}",
                                  json_type_name(*prompt)), "prompt");
  }
  for (const auto& p : r.prompts)
    if (const auto* ids = std::get_if<std::vector<int32_t>>(&p); ids && ids->empty())
      throw bad_request("'prompt' token lists must not be empty", "prompt");
  if (auto v = f.opt_bool("echo")) r.echo = *v;
  if (auto v = f.opt_bool("add_special_tokens")) r.add_special_tokens = *v;
  if (auto v = f.opt_int("logprobs")) {
    if (*v < 0 || *v > kMaxLogprobs)
      throw bad_request(fmt::format("logprobs must be in [0, {}], got {}.", kMaxLogprobs, *v), "logprobs");
    r.logprobs = static_cast<int>(*v);
    r.params.logprobs = r.logprobs;
  }
  if (f.has("suffix")) throw bad_request("suffix is not currently supported", "suffix");
  if (auto v = f.opt_int("best_of"); v && *v > 1) throw bad_request("best_of > 1 is not supported.", "best_of");
  return r;
}

void resolve_max_tokens(CommonRequest& req, int num_prompt_tokens, int max_model_len, int default_max_tokens,
                        int gen_cap, const char* prompt_param) {
  if (num_prompt_tokens >= max_model_len)
    throw ApiError(400, "BadRequestError",
                   fmt::format("This model's maximum context length is {} tokens. However, your request has {} input "
                               "tokens. Please reduce the length of the input messages.",
                               max_model_len, num_prompt_tokens),
                   std::string(prompt_param));
  int64_t room = max_model_len - num_prompt_tokens;
  if (req.max_tokens) {
    if (*req.max_tokens > room)
      throw ApiError(400, "BadRequestError",
                     fmt::format("'max_tokens' or 'max_completion_tokens' is too large: {}. This model's maximum "
                                 "context length is {} tokens and your request has {} input tokens ({} > {} - {}).",
                                 *req.max_tokens, max_model_len, num_prompt_tokens, *req.max_tokens, max_model_len,
                                 num_prompt_tokens),
                     "max_tokens");
    req.params.max_tokens = static_cast<int>(*req.max_tokens);
  } else {
    int64_t want = default_max_tokens > 0 ? default_max_tokens : room;
    if (gen_cap > 0) want = std::min<int64_t>(want, gen_cap);
    req.params.max_tokens = static_cast<int>(std::min(want, room));
  }
}

}  // namespace quench::server
