#include "common/secret_box.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace regionmove {

namespace {
constexpr int kKeyLen = 32, kNonceLen = 12, kTagLen = 16;
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
}  // namespace

Result<std::unique_ptr<SecretBox>> SecretBox::FromKey(std::string key) {
  if (key.size() != kKeyLen) return InvalidArgument("secret key must be 32 bytes");
  return std::unique_ptr<SecretBox>(new SecretBox(std::move(key)));
}

Result<std::unique_ptr<SecretBox>> SecretBox::FromKeyFile(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) {
    std::string key(kKeyLen, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyLen) != 1) {
      return Permanent("no randomness for the secret key");
    }
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(key.data(), kKeyLen);
      if (!out) return Permanent("cannot write secret key file " + path);
    }
    ::chmod(tmp.c_str(), 0600);
    fs::rename(tmp, path, ec);
    if (ec) return Permanent("cannot create secret key file " + path + ": " + ec.message());
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  if (buf.str().size() != kKeyLen) {
    return InvalidArgument("secret key file " + path + " must hold exactly 32 bytes");
  }
  return FromKey(buf.str());
}

Result<std::string> SecretBox::Seal(const std::string& plaintext) const {
  std::string out(kNonceLen + plaintext.size() + kTagLen, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(o, kNonceLen) != 1) return Permanent("no randomness for a nonce");
  Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  bool ok = EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                               reinterpret_cast<const unsigned char*>(key_.data()), o) == 1 &&
            EVP_EncryptUpdate(ctx.get(), o + kNonceLen, &len,
                              reinterpret_cast<const unsigned char*>(plaintext.data()),
                              static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), o + kNonceLen + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagLen,
                                o + kNonceLen + plaintext.size()) == 1;
  if (!ok) return Permanent("encryption failed");
  return out;
}

Result<std::string> SecretBox::Open(const std::string& sealed) const {
  if (sealed.size() < kNonceLen + kTagLen) return Corruption("sealed secret is too short");
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  size_t n = sealed.size() - kNonceLen - kTagLen;
  std::string out(n, '\0');
  Ctx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  bool ok =
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()), in) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                        in + kNonceLen, static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagLen,
                          const_cast<unsigned char*>(in + kNonceLen + n)) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
  if (!ok) return Corruption("secret does not decrypt with this key");
  return out;
}

}  // namespace regionmove
