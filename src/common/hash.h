#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace regionmove {

// Lowercase hex SHA-256 of `data` (OpenSSL).
std::string Sha256Hex(std::string_view data);
// HMAC-SHA256 of `data` under `key`: the 32 raw bytes.
std::string HmacSha256(std::string_view key, std::string_view data);
std::string HexEncode(std::string_view bytes);
// The inverse of HexEncode (either case); false when `hex` is not an even run of hex digits.
bool HexDecode(std::string_view hex, std::string* bytes);

}  // namespace regionmove

namespace regionmove {

// Incremental SHA-256. Not thread-safe.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Lowercase hex digest; the object may not be updated afterwards.
  std::string HexDigest();

 private:
  struct Impl;
  Impl* impl_;
};

// An order-independent digest of a multiset of items: the 128-bit XXH3 hash of each item,
// added up as two 64-bit lanes. Two sides that hold the same items produce the same digest
// whatever order they read them in, so a table can be hashed in storage order (a sequential
// scan) instead of key order (a random walk of its pages). It finds accidental differences (a lost,
// extra or altered row), not forgeries, like the PostgreSQL engine's sum of row hashes. Not
// thread-safe.
class MultisetHash {
 public:
  void Add(const void* data, size_t n);
  void Add(std::string_view s) { Add(s.data(), s.size()); }
  // 32 lowercase hex digits.
  std::string HexDigest() const;

 private:
  uint64_t lo_ = 0, hi_ = 0;
};

std::string Base64Encode(std::string_view bytes);
// False on malformed input.
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace regionmove
