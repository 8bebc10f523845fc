// quench/cli/generate.cpp: `quench generate MODEL_DIR`: one-shot (or interactive) chat or
// completion on the terminal, streamed as it is generated.
//
//   quench generate models/gemma4-tiny-it --chat "What is 23 + 45?"     # chat (the default mode)
//   quench generate MODEL --prompt "Once upon a time"                    # raw completion
//   echo "Hi" | quench generate MODEL                                    # chat message from stdin
//   quench generate MODEL                                                # interactive chat on a terminal
//
// Chat renders the messages with the checkpoint's chat format (src/tokenizer/chat_format.h) and
// prints the answer on stdout; with --enable-thinking the thought channel goes to stderr. --raw
// prints the generated text as is (special tokens included). Sampling defaults follow
// transformers' generate(): greedy unless generation_config.json sets do_sample, in which case
// its temperature / top_k / top_p apply; flags override both.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/verb.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/engine.h"
#include "server/device_runner.h"
#include "server/engine_loader.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/generation_config.h"
#include "tokenizer/tokenizer.h"

namespace {

using namespace quench;

struct GenerateOptions {
  std::string model_dir;
  std::optional<std::string> prompt;
  std::optional<std::string> chat;
  std::optional<std::string> system;
  int max_tokens = 512;
  std::optional<float> temperature, top_p;
  std::optional<int> top_k;
  std::optional<uint64_t> seed;
  bool enable_thinking = false;
  bool raw = false;
  int max_model_len = 0;
  std::string kv_cache_dtype = "auto";
  std::string device = "cpu";
};

/// Writes the streamed text of a chat answer: the thought channel (when present) to stderr, only
/// if shown, the answer to stdout; holds back text that may still turn out to be a channel marker.
class ChatPrinter {
 public:
  explicit ChatPrinter(bool show_thinking) : show_thinking_(show_thinking) {}
  void add(const std::string& delta, bool final) {
    acc_ += delta;
    static constexpr std::string_view kOpen = "<|channel>", kClose = "<channel|>";
    ReasoningSplit rs = split_reasoning(acc_);
    if (!rs.has_reasoning) {
      const std::string trimmed = python_strip(acc_);
      // Still possibly the start of "<|channel>": wait (unless the stream ended).
      if (!final && kOpen.substr(0, std::min(trimmed.size(), kOpen.size())) == trimmed.substr(0, kOpen.size()) &&
          trimmed.size() < kOpen.size())
        return;
      emit(stdout, rs.content, printed_content_, final ? 0 : 0);
      return;
    }
    if (!rs.reasoning_closed) {
      if (show_thinking_) emit(stderr, rs.reasoning, printed_reasoning_, final ? 0 : held_suffix(rs.reasoning, kClose));
      return;
    }
    if (show_thinking_) {
      emit(stderr, rs.reasoning, printed_reasoning_, 0);
      if (!thinking_closed_) std::fputs("\n", stderr);
    }
    thinking_closed_ = true;
    // The answer after the channel starts with a newline in Gemma's format; drop leading ones.
    std::string content = rs.content;
    size_t lead = content.find_first_not_of('\n');
    content = lead == std::string::npos ? std::string() : content.substr(lead);
    emit(stdout, content, printed_content_, 0);
  }
  /// The answer printed so far (for the conversation history).
  std::string answer() const { return split_reasoning(acc_).content; }

 private:
  /// Length of the longest suffix of `s` that is a proper prefix of `marker`.
  static size_t held_suffix(const std::string& s, std::string_view marker) {
    for (size_t n = std::min(s.size(), marker.size() - 1); n > 0; --n)
      if (s.compare(s.size() - n, n, marker.substr(0, n)) == 0) return n;
    return 0;
  }
  static void emit(FILE* f, const std::string& text, size_t& printed, size_t hold) {
    if (text.size() < printed + hold) return;
    const size_t end = text.size() - hold;
    std::fwrite(text.data() + printed, 1, end - printed, f);
    std::fflush(f);
    printed = end;
  }
  bool show_thinking_;
  bool thinking_closed_ = false;
  std::string acc_;
  size_t printed_content_ = 0, printed_reasoning_ = 0;
};

SamplingParams make_params(const GenerateOptions& o, const GenerationConfig& gen, bool chat) {
  SamplingParams p;
  const bool do_sample = gen.do_sample.value_or(false);
  p.temperature = do_sample ? static_cast<float>(gen.temperature.value_or(1.0)) : 0.0f;
  if (do_sample && gen.top_k) p.top_k = *gen.top_k;
  if (do_sample && gen.top_p) p.top_p = static_cast<float>(*gen.top_p);
  if (o.temperature) p.temperature = *o.temperature;
  if (o.top_p) p.top_p = *o.top_p;
  if (o.top_k) p.top_k = *o.top_k;
  p.seed = o.seed;
  p.max_tokens = o.max_tokens;
  // Chat keeps special tokens so the thought channel can be split off (and --raw shows them).
  p.skip_special_tokens = !(chat || o.raw);
  return p;
}

/// Runs one request, streaming its text through `on_text(delta, final)`. Returns the finish reason.
template <class OnText>
FinishReason run_one(Engine& engine, std::vector<int32_t> ids, const SamplingParams& p, OnText on_text) {
  static int counter = 0;
  const int max_out = engine.max_model_len() - static_cast<int>(ids.size());
  if (max_out < 1)
    throw InvalidArgument(fmt::format("the prompt has {} tokens; --max-model-len is {}", ids.size(), engine.max_model_len()));
  auto handle = engine.add_request(fmt::format("generate-{}", counter++), std::move(ids), p);
  RequestOutput d;
  FinishReason reason = FinishReason::kAbort;
  for (;;) {
    if (!handle->wait_next(d, std::chrono::milliseconds(100))) continue;
    if (d.error) throw Error("generation failed: " + *d.error);
    for (const SeqOutput& so : d.outputs) {
      if (so.finish_reason) reason = *so.finish_reason;
      on_text(so.new_text, d.finished);
    }
    if (d.outputs.empty() && d.finished) on_text(std::string(), true);
    if (d.finished) return reason;
  }
}

std::vector<int32_t> encode_chat(const Tokenizer& tok, const std::vector<ChatMessage>& msgs, bool thinking) {
  ChatTemplateOptions opts;
  opts.enable_thinking = thinking;
  return tok.encode(render_chat(msgs, opts));  // the rendered text starts with <bos>
}

int run_generate(const GenerateOptions& o) {
  if (o.prompt && o.chat) throw InvalidArgument("--prompt and --chat cannot be used together");
  if (o.max_tokens < 1) throw InvalidArgument(fmt::format("--max-tokens must be >= 1, got {}", o.max_tokens));
  // stdout carries only the generated text: route spdlog's default logger to quench's (stderr).
  quench::log();
  spdlog::set_default_logger(spdlog::get("quench"));
  server::EngineLoadOptions lo;
  lo.engine.max_num_seqs = 1;
  lo.engine.max_model_len = o.max_model_len;
  lo.kv_cache_dtype = o.kv_cache_dtype;
  server::configure_device(lo, o.device, 0.9, o.model_dir);
  auto engine = server::load_engine(o.model_dir, lo);
  engine->start();
  const Tokenizer& tok = engine->tokenizer();

  if (o.prompt) {  // raw completion: BOS added by the tokenizer's post-processor unless written
    EncodeOptions eo;
    eo.add_special_tokens = o.prompt->rfind("<bos>", 0) != 0;
    SamplingParams p = make_params(o, engine->generation_config(), false);
    run_one(*engine, tok.encode(*o.prompt, eo), p, [](const std::string& t, bool) {
      std::fwrite(t.data(), 1, t.size(), stdout);
      std::fflush(stdout);
    });
    std::fputs("\n", stdout);
    engine->shutdown(false);
    return 0;
  }

  std::vector<ChatMessage> history;
  if (o.system) history.push_back({"system", *o.system, ""});
  const SamplingParams p = make_params(o, engine->generation_config(), true);
  auto answer = [&](const std::string& user) {
    history.push_back({"user", user, ""});
    ChatPrinter printer(o.enable_thinking);
    std::string raw_text;
    run_one(*engine, encode_chat(tok, history, o.enable_thinking), p, [&](const std::string& t, bool final) {
      if (o.raw) {
        std::fwrite(t.data(), 1, t.size(), stdout);
        std::fflush(stdout);
        raw_text += t;
      } else {
        printer.add(t, final);
      }
    });
    std::fputs("\n", stdout);
    std::fflush(stdout);
    history.push_back({"assistant", o.raw ? split_reasoning(raw_text).content : printer.answer(), ""});
  };

  if (o.chat) {
    answer(*o.chat);
  } else if (isatty(STDIN_FILENO)) {
    std::fprintf(stderr, "quench generate: interactive chat with %s (empty line or Ctrl-D to quit)\n", o.model_dir.c_str());
    std::string line;
    for (;;) {
      std::fputs("> ", stderr);
      if (!std::getline(std::cin, line) || line.empty()) break;
      answer(line);
    }
  } else {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) all.pop_back();
    if (all.empty()) throw InvalidArgument("no message: give --chat TEXT, --prompt TEXT, or text on stdin");
    answer(all);
  }
  engine->shutdown(false);
  return 0;
}

const bool registered = quench::cli::register_verb(
    {"generate", "One-shot or interactive chat / completion on the terminal", [](CLI::App& app) {
       auto o = std::make_shared<GenerateOptions>();
       app.add_option("model", o->model_dir, "Model directory (config.json, safetensors, tokenizer.json)")
           ->required()
           ->check(CLI::ExistingDirectory);
       auto* prompt = app.add_option("--prompt", o->prompt, "Raw completion of TEXT (no chat format)");
       auto* chat = app.add_option("--chat", o->chat, "One chat message (the default mode; stdin when omitted)");
       prompt->excludes(chat);
       app.add_option("--system", o->system, "System message (chat)");
       app.add_option("--max-tokens", o->max_tokens, "Generated tokens at most (default 512)");
       app.add_option("--temperature", o->temperature,
                      "Sampling temperature; 0 = greedy (default: greedy unless generation_config sets do_sample)");
       app.add_option("--top-p", o->top_p, "Nucleus sampling mass in (0, 1]");
       app.add_option("--top-k", o->top_k, "Keep the k most likely tokens (0 or -1 = off)");
       app.add_option("--seed", o->seed, "Sampling seed (same seed, same output)");
       app.add_flag("--enable-thinking", o->enable_thinking, "Let the model think first (thoughts go to stderr)");
       app.add_flag("--raw", o->raw, "Print the generated text as is, special tokens included");
       app.add_option("--max-model-len", o->max_model_len, "Context length (prompt + output), 0 = model max");
       app.add_option("--kv-cache-dtype", o->kv_cache_dtype, "auto | bf16 | fp8 | fp8_e4m3 | fp32");
       app.add_option("--device", o->device, "cpu (cuda when built with the CUDA backend)");
       return [o] { return run_generate(*o); };
     }});

}  // namespace
