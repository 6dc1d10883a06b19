#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace regionmove {

// Streams `in` (its first `length` bytes when length >= 0; Corruption when it is shorter) into
// `out` compressed with zstd (level 3), calling `progress(raw bytes read)` per chunk; a non-ok
// progress stops it. Returns the compressed size; `sha256`, when given, receives the hex SHA-256
// of what it wrote (hashed as written, not read back).
Result<int64_t> ZstdCompressFile(const std::string& in, const std::string& out,
                                 const std::function<Status(int64_t)>& progress,
                                 std::string* sha256 = nullptr, int64_t length = -1);
// The same from memory.
Result<int64_t> ZstdCompressBuffer(std::string_view data, const std::string& out,
                                   const std::function<Status(int64_t)>& progress,
                                   std::string* sha256 = nullptr);
// The reverse; returns the decompressed size. Corruption on a damaged stream. `sha256`, when
// given, receives the hex SHA-256 of the compressed file as it was read.
Result<int64_t> ZstdDecompressFile(const std::string& in, const std::string& out,
                                   const std::function<Status(int64_t)>& progress,
                                   std::string* sha256 = nullptr);

}  // namespace regionmove
