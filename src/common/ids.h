#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>

namespace regionmove {

// A seeded random source shared by id generation and backoff jitter. Thread-safe.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  // Seeded from std::random_device: for production only.
  static Rng FromEntropy();

  uint64_t Next();
  // Uniform in [lo, hi].
  int64_t Uniform(int64_t lo, int64_t hi);

 private:
  std::mutex mu_;
  std::mt19937_64 engine_;
};

// "app_" followed by 12 lowercase RFC 4648 base32 characters (a-z, 2-7).
std::string NewAppId(Rng& rng);
bool IsValidAppId(std::string_view id);

// Random (version 4) UUID in canonical lowercase form.
std::string NewUuidV4(Rng& rng);
bool IsValidUuid(std::string_view id);

// Region slug: ^[a-z]+(-[a-z0-9]+)+$ ("us-east-1").
bool IsValidRegionSlug(std::string_view slug);

}  // namespace regionmove
