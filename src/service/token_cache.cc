#include "service/token_cache.h"

namespace regionmove {

Result<User> TokenCache::UserForTokenHash(const std::string& token_sha256_hex) {
  int64_t now = clock_->NowMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(token_sha256_hex);
    if (it != entries_.end() && it->second.expires_at_ms > now) return it->second.user;
  }
  ASSIGN_OR_RETURN(User user, store_->UserForTokenHash(token_sha256_hex));
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.size() >= max_entries_) entries_.clear();  // rare: start over rather than scan
  entries_[token_sha256_hex] = Entry{user, now + ttl_ms_};
  return user;
}

}  // namespace regionmove
