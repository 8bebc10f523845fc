// quench/quant/memory.h: keeping a streaming pass over a memory-mapped checkpoint small in RSS.
#pragma once

#include <cstddef>

namespace quench {

/// Drops the resident pages of [p, p+n) of a read-only file mapping from this process
/// (madvise MADV_DONTNEED on the whole pages inside the range). The data stays in the page
/// cache and is faulted back on the next read, so views stay valid. No-op on failure.
void release_mapped_pages(const void* p, std::size_t n);

/// Peak resident set size of this process so far, in bytes (/proc/self/status VmHWM); 0 if unknown.
std::size_t peak_rss_bytes();

}  // namespace quench
