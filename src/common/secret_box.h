#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace regionmove {

// Authenticated encryption of small secrets at rest: AES-256-GCM with a random 96-bit nonce.
// Sealed form: nonce (12) || ciphertext || tag (16). Thread-safe (no shared mutable state).
class SecretBox {
 public:
  // Reads a 32-byte key from `path`, creating it (mode 0600, random) when absent; processes
  // starting together agree on one key.
  static Result<std::unique_ptr<SecretBox>> FromKeyFile(const std::string& path);
  // The deployment's key: REGIONMOVE_SECRET_KEY (64 hex digits) when set, else the key file.
  // With `may_create` false (processes on several machines share the store) a missing key file
  // is an error naming the ways to supply one: a key made here would differ from the others'.
  static Result<std::unique_ptr<SecretBox>> ForDeployment(const std::string& key_file,
                                                          bool may_create);
  static Result<std::unique_ptr<SecretBox>> FromKey(std::string key);

  // `associated` is authenticated, not stored: what the secret belongs to (its app and name),
  // so that a sealed value moved to another row does not open there.
  Result<std::string> Seal(const std::string& plaintext, const std::string& associated = "") const;
  // Corruption when the ciphertext was altered, sealed with another key or for another
  // `associated`.
  Result<std::string> Open(const std::string& sealed, const std::string& associated = "") const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace regionmove
