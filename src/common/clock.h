#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace regionmove {

// Time source. Domain and saga code take a Clock and never read the system clock directly,
// so tests can drive time with FakeClock. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMs() = 0;
  // Blocks the caller for `ms` of this clock's time.
  virtual void SleepMs(int64_t ms) = 0;
};

// The wall clock.
class SystemClock final : public Clock {
 public:
  int64_t NowMs() override;
  void SleepMs(int64_t ms) override;
  static SystemClock* Default();
};

// A clock that only moves when told to. SleepMs advances it instead of blocking.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t NowMs() override { return now_.load(); }
  void SleepMs(int64_t ms) override { Advance(ms); }
  void Advance(int64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_;
};

// "2026-11-25T09:45:29.123Z"
std::string FormatTimeMs(int64_t ms);
// The inverse of FormatTimeMs ("...Z" with optional milliseconds); 0 when malformed.
int64_t ParseTimeMs(const std::string& text);

}  // namespace regionmove
