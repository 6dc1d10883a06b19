#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "common/result.h"

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

// A clock that follows another time source, such as the database server of a shared control
// store, so that processes on several machines judge leases and schedules on one timeline
// whatever their own clocks say. It reads `base` plus an offset measured against `source`
// (the midpoint of the round trip), re-measured every `refresh_ms` of base time by the caller
// that finds it due; until the first measurement succeeds, and whenever `source` fails, the
// last offset (initially 0) is kept. Thread-safe.
class SyncedClock final : public Clock {
 public:
  SyncedClock(Clock* base, std::function<Result<int64_t>()> source, int64_t refresh_ms = 10'000)
      : base_(base), source_(std::move(source)), refresh_ms_(refresh_ms) {}
  int64_t NowMs() override;
  void SleepMs(int64_t ms) override { base_->SleepMs(ms); }
  // Measures the offset now. Returns the source's error, if any.
  Status Sync();
  int64_t offset_ms() const { return offset_.load(); }

 private:
  Clock* base_;
  std::function<Result<int64_t>()> source_;
  const int64_t refresh_ms_;
  std::atomic<int64_t> offset_{0};
  std::atomic<int64_t> next_sync_at_{0};  // base time
  std::mutex sync_mu_;
};

// "2026-11-25T09:45:29.123Z"
std::string FormatTimeMs(int64_t ms);
// The inverse of FormatTimeMs ("...Z" with optional milliseconds); 0 when malformed.
int64_t ParseTimeMs(const std::string& text);

}  // namespace regionmove
