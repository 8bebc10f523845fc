// quench/ablate/prompts.h: the contrastive prompt sets of `quench ablate` (plain text, one prompt
// a line, or JSONL with a "prompt" field) and how each prompt becomes token ids.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace quench {
class Tokenizer;
}

namespace quench::ablate {

/// Reads a prompt set. A file whose first non-blank line starts with '{' is JSONL: every
/// non-blank line must be an object with a string "prompt". Otherwise every non-blank line
/// (trailing "\r" removed) is one prompt. Throws IoError (unreadable), FormatError naming the
/// file and line for bad JSON or a missing/non-string "prompt", InvalidArgument for an empty set.
std::vector<std::string> read_prompts(const std::filesystem::path& file);

/// How prompts are turned into tokens (`--chat-template on|off`, `--system`).
struct PromptFormat {
  bool chat_template = true;  ///< render with the Gemma 4 chat format and the generation prompt
  std::string system;         ///< optional system turn ("" = none, as jim-plus and Arditi do)
};

/// Token ids of one prompt: with the chat template, render_chat([system], user, generation
/// prompt, thinking off) tokenized without adding special tokens (the render starts with <bos>);
/// without it, <bos> + tokenize(prompt). Throws InvalidArgument when the tokenizer has no <bos>.
std::vector<int32_t> prompt_tokens(const Tokenizer& tok, const std::string& prompt, const PromptFormat& fmt);

}  // namespace quench::ablate
