#pragma once

#include <string>
#include <string_view>

namespace regionmove {

// Lowercase hex SHA-256 of `data` (OpenSSL).
std::string Sha256Hex(std::string_view data);
std::string HexEncode(std::string_view bytes);

}  // namespace regionmove
