#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace regionmove {

// Authenticated encryption of small secrets at rest: AES-256-GCM with a random 96-bit nonce.
// Sealed form: nonce (12) || ciphertext || tag (16). Thread-safe (no shared mutable state).
class SecretBox {
 public:
  // Reads a 32-byte key from `path`, creating it (mode 0600, random) when absent.
  static Result<std::unique_ptr<SecretBox>> FromKeyFile(const std::string& path);
  static Result<std::unique_ptr<SecretBox>> FromKey(std::string key);

  Result<std::string> Seal(const std::string& plaintext) const;
  // Corruption when the ciphertext was altered or sealed with another key.
  Result<std::string> Open(const std::string& sealed) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace regionmove
