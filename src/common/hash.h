#pragma once

#include <string>
#include <string_view>

namespace regionmove {

// Lowercase hex SHA-256 of `data` (OpenSSL).
std::string Sha256Hex(std::string_view data);
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

std::string Base64Encode(std::string_view bytes);
// False on malformed input.
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace regionmove
