// quench/server/text_io.h: the server's only door to the tokenizer and the chat format.
//
// Everything that turns request text into token ids (and back) goes through these functions, so the
// routes stay independent of the tokenizer's internals. Implemented over src/tokenizer/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/protocol.h"

namespace quench {
class Tokenizer;
}

namespace quench::server {

/// Renders a chat with the model's chat format (Gemma 4: `<|turn>role\n...<turn|>`, BOS once,
/// generation prompt with an empty thought channel when thinking is off) and tokenizes it.
/// Throws ApiError 400 when the chat format rejects the messages (e.g. a misplaced system turn).
std::vector<int32_t> chat_prompt_ids(const Tokenizer& tok, const ChatCompletionRequest& req);

/// Tokenizes a completions prompt; add_bos prepends the BOS token.
std::vector<int32_t> text_prompt_ids(const Tokenizer& tok, const std::string& text, bool add_bos);

/// Decodes ids to text (UTF-8; invalid sequences as U+FFFD).
std::string decode_ids(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special_tokens);

/// The decoded text of one token, as logprob entries show it ("token" field).
std::string token_text(const Tokenizer& tok, int32_t id);

/// Vocabulary size (bounds token ids in requests).
int vocab_size(const Tokenizer& tok);

}  // namespace quench::server
