#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/result.h"
#include "store/control_store.h"

namespace regionmove {

// Token -> user lookups for every authenticated request, remembered for `ttl_ms` so that a
// request does not cost a control-store query for its caller. Only tokens that exist are
// remembered (a new token works at once); a token removed or given to another user in the store
// is honoured for at most `ttl_ms` more. At most `max_entries` are kept. Thread-safe.
class TokenCache {
 public:
  TokenCache(ControlStore* store, Clock* clock, int64_t ttl_ms, size_t max_entries = 10'000)
      : store_(store), clock_(clock), ttl_ms_(ttl_ms), max_entries_(max_entries) {}

  // As ControlStore::UserForTokenHash.
  Result<User> UserForTokenHash(const std::string& token_sha256_hex);

 private:
  struct Entry {
    User user;
    int64_t expires_at_ms;
  };
  ControlStore* store_;
  Clock* clock_;
  const int64_t ttl_ms_;
  const size_t max_entries_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace regionmove
