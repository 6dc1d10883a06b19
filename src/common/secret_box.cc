#include "common/secret_box.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/hash.h"
#include "common/sync.h"

namespace regionmove {

namespace {
constexpr int kKeyLen = 32, kNonceLen = 12, kTagLen = 16;
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
}  // namespace

Result<std::unique_ptr<SecretBox>> SecretBox::FromKey(std::string key) {
  if (key.size() != kKeyLen) return InvalidArgument("secret key must be 32 bytes");
  return std::unique_ptr<SecretBox>(new SecretBox(std::move(key)));
}

Result<std::unique_ptr<SecretBox>> SecretBox::ForDeployment(const std::string& key_file,
                                                            bool may_create) {
  if (const char* hex = std::getenv("REGIONMOVE_SECRET_KEY"); hex && *hex) {
    std::string key;
    if (!HexDecode(hex, &key) || key.size() != kKeyLen) {
      return InvalidArgument("REGIONMOVE_SECRET_KEY must be 64 hex digits (32 bytes)",
                             "invalid_config");
    }
    return FromKey(key);
  }
  if (!may_create && !std::filesystem::exists(key_file)) {
    return InvalidArgument(
        "the secret key file " + key_file +
            " does not exist. Every process that shares a PostgreSQL control store must use "
            "the same key: copy the key file from a machine that has it, or set "
            "REGIONMOVE_SECRET_KEY (64 hex digits; make one with `openssl rand -hex 32`)",
        "invalid_config");
  }
  return FromKeyFile(key_file);
}

Result<std::unique_ptr<SecretBox>> SecretBox::FromKeyFile(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) {
    // Created under a private name, then linked into place: link() fails when another process
    // got there first, so two processes starting together end up with one key, never two.
    std::string key(kKeyLen, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyLen) != 1) {
      return Permanent("no randomness for the secret key");
    }
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    Status created = CreateFileOnce(path, key, 0600);
    if (!created.ok()) {
      return Permanent("cannot create secret key file " + path + ": " + created.message());
    }
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  if (buf.str().size() != kKeyLen) {
    return InvalidArgument("secret key file " + path + " must hold exactly 32 bytes");
  }
  return FromKey(buf.str());
}

Result<std::string> SecretBox::Seal(const std::string& plaintext,
                                    const std::string& associated) const {
  std::string out(kNonceLen + plaintext.size() + kTagLen, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(o, kNonceLen) != 1) return Permanent("no randomness for a nonce");
  Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  bool ok = EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                               reinterpret_cast<const unsigned char*>(key_.data()), o) == 1 &&
            (associated.empty() ||
             EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                               reinterpret_cast<const unsigned char*>(associated.data()),
                               static_cast<int>(associated.size())) == 1) &&
            EVP_EncryptUpdate(ctx.get(), o + kNonceLen, &len,
                              reinterpret_cast<const unsigned char*>(plaintext.data()),
                              static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), o + kNonceLen + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagLen,
                                o + kNonceLen + plaintext.size()) == 1;
  if (!ok) return Permanent("encryption failed");
  return out;
}

Result<std::string> SecretBox::Open(const std::string& sealed,
                                    const std::string& associated) const {
  if (sealed.size() < kNonceLen + kTagLen) return Corruption("sealed secret is too short");
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  size_t n = sealed.size() - kNonceLen - kTagLen;
  std::string out(n, '\0');
  Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  bool ok =
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()), in) == 1 &&
      (associated.empty() ||
       EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                         reinterpret_cast<const unsigned char*>(associated.data()),
                         static_cast<int>(associated.size())) == 1) &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                        in + kNonceLen, static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagLen,
                          const_cast<unsigned char*>(in + kNonceLen + n)) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
  if (!ok) return Corruption("secret does not decrypt with this key");
  return out;
}

}  // namespace regionmove
