// quench/tokenizer/bpe_model.cpp: BPE with byte fallback; merges in rank order over a linked list of
// symbols with a min-heap of candidate pairs (huggingface/tokenizers models/bpe/word.rs merge_all).
#include "tokenizer/bpe_model.h"

#include <queue>

#include "core/error.h"      // FormatError
#include "tokenizer/utf8.h"  // decode_at

namespace quench {

// (left id, right id) -> (rank, merged id), open addressing with linear probing.
struct BpeModel::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    uint32_t rank = 0;
    int32_t new_id = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  std::vector<Slot> slots;
  uint64_t mask = 0;

  explicit MergeTable(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 1) cap <<= 1;
    slots.resize(cap);
    mask = cap - 1;
  }
  static uint64_t key_of(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static uint64_t mix(uint64_t x) {  // splitmix64 finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  // Later duplicates overwrite earlier ones, as HF's HashMap collect does.
  void insert(int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    const uint64_t k = key_of(a, b);
    for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == kEmpty || slots[i].key == k) {
        slots[i] = {k, rank, new_id};
        return;
      }
    }
  }
  const Slot* find(int32_t a, int32_t b) const {
    const uint64_t k = key_of(a, b);
    for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

BpeModel::BpeModel(BpeModel&& o) noexcept
    : vocab_(std::move(o.vocab_)),
      bmp_ids_(std::move(o.bmp_ids_)),
      byte_ids_(std::move(o.byte_ids_)),
      merges_(std::move(o.merges_)),
      unk_id_(o.unk_id_),
      max_id_(o.max_id_),
      byte_fallback_(o.byte_fallback_),
      fuse_unk_(o.fuse_unk_),
      ignore_merges_(o.ignore_merges_),
      cache_(std::move(o.cache_)) {}

BpeModel::~BpeModel() = default;

BpeModel BpeModel::from_json(const tok_json::Node& node, BpeTables tables) {
  const std::string type = node.at("type").str();
  if (type != "BPE") node.child("type").fail("unsupported model type '" + type + "' (supported: BPE)");
  if (node.find("dropout")) node.child("dropout").fail("BPE dropout is not supported");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (node.find(k) && !node.child(k).str().empty()) node.child(k).fail("not supported (Gemma uses none)");
  }
  BpeModel m;
  m.byte_fallback_ = tok_json::bool_or(node, "byte_fallback", false);
  m.fuse_unk_ = tok_json::bool_or(node, "fuse_unk", false);
  m.ignore_merges_ = tok_json::bool_or(node, "ignore_merges", false);

  if (!node.at("vocab").value.is_object()) node.child("vocab").fail("expected an object {token: id}");
  m.vocab_.reserve(tables.vocab.size());
  for (auto& [tok, id] : tables.vocab) {
    m.max_id_ = std::max(m.max_id_, id);
    m.vocab_.insert_or_assign(std::move(tok), id);
  }
  m.bmp_ids_.assign(0x10000, -1);
  m.byte_ids_.assign(256, -1);
  for (const auto& [tok, id] : m.vocab_) {
    const utf8::Char c = utf8::decode_at(tok, 0);
    if (!tok.empty() && !c.invalid && c.len == tok.size() && c.code_point < 0x10000) m.bmp_ids_[c.code_point] = id;
  }
  static const char* kHex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
    if (auto it = m.vocab_.find(name); it != m.vocab_.end()) m.byte_ids_[b] = it->second;
  }
  if (node.find("unk_token")) {
    const std::string u = node.child("unk_token").str();
    auto it = m.vocab_.find(u);
    if (it == m.vocab_.end()) node.child("unk_token").fail("unk_token '" + u + "' is not in model.vocab");
    m.unk_id_ = it->second;
  }

  const tok_json::Node merges = node.at("merges");
  if (!merges.value.is_array()) merges.fail("expected an array");
  m.merges_ = std::make_unique<MergeTable>(tables.merges.size());
  std::string joined;
  for (size_t r = 0; r < tables.merges.size(); ++r) {
    const auto& [a, b] = tables.merges[r];
    auto ia = m.vocab_.find(a), ib = m.vocab_.find(b);
    joined.assign(a).append(b);
    auto ij = m.vocab_.find(joined);
    if (ia == m.vocab_.end() || ib == m.vocab_.end() || ij == m.vocab_.end()) {
      throw FormatError(merges.file + ": /model/merges/" + std::to_string(r) + ": merge '" + a + "' + '" + b +
                        "' names a token missing from model.vocab");
    }
    m.merges_->insert(ia->second, ib->second, static_cast<uint32_t>(r), ij->second);
  }
  return m;
}

std::optional<int32_t> BpeModel::char_id(std::string_view ch, char32_t cp) const {
  if (cp < 0x10000) {
    const int32_t id = bmp_ids_[cp];
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
  }
  auto it = vocab_.find(ch);
  return it == vocab_.end() ? std::nullopt : std::optional<int32_t>(it->second);
}

bool BpeModel::add_fallback(std::string_view bytes, std::vector<int32_t>& ids) const {
  if (!byte_fallback_) return false;
  for (char c : bytes)
    if (byte_ids_[static_cast<uint8_t>(c)] < 0) return false;
  for (char c : bytes) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
  return true;
}

void BpeModel::merge_symbols(std::vector<int32_t>& ids) const {
  const int n = static_cast<int>(ids.size());
  if (n < 2) return;
  std::vector<int> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    uint32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Cand> heap_storage;
  heap_storage.reserve(n);
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap(std::greater<Cand>{}, std::move(heap_storage));
  for (int i = 0; i + 1 < n; ++i) {
    if (const auto* s = merges_->find(ids[i], ids[i + 1])) heap.push({s->rank, i, s->new_id});
  }
  while (!heap.empty()) {
    const Cand top = heap.top();
    heap.pop();
    if (!alive[top.pos]) continue;
    const int right = next[top.pos];
    if (right < 0) continue;
    const auto* s = merges_->find(ids[top.pos], ids[right]);
    if (!s || s->new_id != top.new_id) continue;  // stale entry
    ids[top.pos] = top.new_id;
    alive[right] = 0;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    if (prev[top.pos] >= 0) {
      const int p = prev[top.pos];
      if (const auto* sp = merges_->find(ids[p], ids[top.pos])) heap.push({sp->rank, p, sp->new_id});
    }
    if (next[top.pos] >= 0) {
      if (const auto* sn = merges_->find(ids[top.pos], ids[next[top.pos]])) heap.push({sn->rank, top.pos, sn->new_id});
    }
  }
  size_t w = 0;
  for (int i = 0; i < n; ++i)
    if (alive[i]) ids[w++] = ids[i];
  ids.resize(w);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  if (ignore_merges_) {
    if (auto it = vocab_.find(word); it != vocab_.end()) ids.push_back(it->second);
  }
  if (ids.empty()) {
    ids.reserve(word.size());
    bool pending_unk = false;
    auto flush_unk = [&] {
      if (pending_unk) ids.push_back(*unk_id_);
      pending_unk = false;
    };
    for (size_t pos = 0; pos < word.size();) {
      const utf8::Char c = utf8::decode_at(word, pos);
      const std::string_view ch = word.substr(pos, c.len);
      pos += c.len;
      std::optional<int32_t> id = c.invalid ? std::nullopt : char_id(ch, c.code_point);
      if (id) {
        flush_unk();
        ids.push_back(*id);
        continue;
      }
      // HF quirk kept: a successful byte fallback does not flush a pending unk (model.rs merge_word).
      if (add_fallback(ch, ids)) continue;
      if (!unk_id_) {
        throw InvalidArgument("tokenizer: character at byte " + std::to_string(pos - c.len) +
                              " of a word has no token, no byte fallback and no unk_token");
      }
      if (pending_unk && !fuse_unk_) ids.push_back(*unk_id_);
      pending_unk = true;
    }
    flush_unk();
    merge_symbols(ids);
  }
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), ids);
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace quench
