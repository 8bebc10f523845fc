// quench/tokenizer/incremental_detokenizer.cpp: byte-exact streaming detokenization.
#include "tokenizer/incremental_detokenizer.h"

#include "tokenizer/tokenizer_impl.h"  // Tokenizer::Impl (decoder, byte values)
#include "tokenizer/utf8.h"            // decode_at, is_incomplete_prefix, kReplacement

namespace quench {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens)
    : tok_(&tok), skip_special_(skip_special_tokens), num_strip_start_left_(tok.impl_->decoder.strip_start_after_fuse()) {}

std::string IncrementalDetokenizer::emit(std::string s) {
  const std::string& c = tok_->impl_->decoder.strip_after_fuse_content();
  while (num_strip_start_left_ > 0 && !s.empty()) {
    if (s.compare(0, c.size(), c) == 0) {
      s.erase(0, c.size());
      --num_strip_start_left_;
    } else {
      num_strip_start_left_ = 0;
    }
  }
  text_ += s;
  return s;
}

std::string IncrementalDetokenizer::push(int32_t id) {
  const Tokenizer::Impl& m = *tok_->impl_;
  m.check_id(id);
  if (skip_special_ && m.special[id]) return {};
  std::string out;
  const int16_t byte = m.decoder.has_byte_fallback() ? m.byte_value[id] : int16_t{-1};
  if (byte >= 0) {
    pending_ += static_cast<char>(byte);
    // Emit every complete character; keep a valid incomplete tail; U+FFFD for invalid bytes.
    size_t pos = 0;
    while (pos < pending_.size()) {
      const utf8::Char c = utf8::decode_at(pending_, pos);
      if (!c.invalid) {
        out.append(pending_, pos, c.len);
        pos += c.len;
      } else if (utf8::is_incomplete_prefix(std::string_view(pending_).substr(pos))) {
        break;
      } else {
        out += utf8::kReplacement;
        pos += 1;
      }
    }
    pending_.erase(0, pos);
    return emit(std::move(out));
  }
  out = flush_pending();
  if (m.decoder.joins_with_space() && num_tokens_ > 0) out += ' ';
  ++num_tokens_;
  out += m.decoder.decode_piece(m.token_by_id[id]);
  return emit(std::move(out));
}

std::string IncrementalDetokenizer::flush_pending() {
  std::string out;
  for (size_t i = 0; i < pending_.size(); ++i) out += utf8::kReplacement;
  pending_.clear();
  return out;
}

std::string IncrementalDetokenizer::flush() { return emit(flush_pending()); }

}  // namespace quench
