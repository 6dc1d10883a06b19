#include "common/clock.h"

#include <chrono>
#include <ctime>
#include <thread>

namespace regionmove {

int64_t SystemClock::NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void SystemClock::SleepMs(int64_t ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

SystemClock* SystemClock::Default() {
  static SystemClock clock;
  return &clock;
}

std::string FormatTimeMs(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

int64_t ParseTimeMs(const std::string& text) {
  std::tm tm{};
  int ms = 0;
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
      if (digits++ < 3) ms = ms * 10 + (*rest - '0');
    }
    while (digits++ < 3) ms *= 10;
  }
  if (*rest != 'Z') return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

Status SyncedClock::Sync() {
  std::lock_guard<std::mutex> lock(sync_mu_);
  int64_t before = base_->NowMs();
  auto at = source_();
  int64_t after = base_->NowMs();
  next_sync_at_ = after + refresh_ms_;
  if (!at.ok()) return at.status();
  offset_ = *at - (before + after) / 2;
  return Status::Ok();
}

int64_t SyncedClock::NowMs() {
  int64_t now = base_->NowMs();
  if (now >= next_sync_at_.load()) {
    // One caller measures; the others read the offset they have.
    std::unique_lock<std::mutex> lock(sync_mu_, std::try_to_lock);
    if (lock.owns_lock() && now >= next_sync_at_.load()) {
      next_sync_at_ = now + refresh_ms_;  // the others skip while this one measures
      lock.unlock();
      (void)Sync();
      now = base_->NowMs();
    }
  }
  return now + offset_.load();
}

}  // namespace regionmove
