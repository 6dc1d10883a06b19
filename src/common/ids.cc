#include "common/ids.h"

namespace regionmove {

Rng Rng::FromEntropy() {
  std::random_device rd;
  return Rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
}

uint64_t Rng::Next() {
  std::lock_guard<std::mutex> lock(mu_);
  return engine_();
}

int64_t Rng::Uniform(int64_t lo, int64_t hi) {
  std::lock_guard<std::mutex> lock(mu_);
  return std::uniform_int_distribution<int64_t>(lo, hi)(engine_);
}

namespace {
constexpr std::string_view kBase32 = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::string_view kHex = "0123456789abcdef";
bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

std::string NewAppId(Rng& rng) {
  std::string id = "app_";
  uint64_t bits = rng.Next();
  for (int i = 0; i < 12; ++i) {
    id += kBase32[bits & 31];
    bits >>= 5;
  }
  return id;
}

bool IsValidAppId(std::string_view id) {
  if (id.size() != 16 || id.substr(0, 4) != "app_") return false;
  for (char c : id.substr(4)) {
    if (kBase32.find(c) == std::string_view::npos) return false;
  }
  return true;
}

std::string NewUuidV4(Rng& rng) {
  uint64_t hi = rng.Next(), lo = rng.Next();
  hi = (hi & ~0xF000ULL) | 0x4000ULL;              // version 4
  lo = (lo & ~(0xC0ULL << 56)) | (0x80ULL << 56);  // variant 10xx
  std::string out;
  out.reserve(36);
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) out += kHex[(v >> (i * 4)) & 0xF];
  };
  put(hi >> 32, 8);
  out += '-';
  put((hi >> 16) & 0xFFFF, 4);
  out += '-';
  put(hi & 0xFFFF, 4);
  out += '-';
  put(lo >> 48, 4);
  out += '-';
  put(lo & 0xFFFFFFFFFFFFULL, 12);
  return out;
}

bool IsValidUuid(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? id[i] != '-' : !IsHex(id[i])) return false;
  }
  return id[14] == '4' && (id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
}

bool IsValidRegionSlug(std::string_view slug) {
  // ^[a-z]+(-[a-z0-9]+)+$
  size_t i = 0;
  while (i < slug.size() && IsLower(slug[i])) ++i;
  if (i == 0) return false;
  int groups = 0;
  while (i < slug.size()) {
    if (slug[i] != '-') return false;
    size_t start = ++i;
    while (i < slug.size() && (IsLower(slug[i]) || IsDigit(slug[i]))) ++i;
    if (i == start) return false;
    ++groups;
  }
  return groups >= 1 && slug.size() <= 63;
}

}  // namespace regionmove
