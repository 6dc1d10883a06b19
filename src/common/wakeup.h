#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace regionmove {

// Lets threads sleep until something may have changed: Wait returns after `timeout_ms`, or
// sooner once Notify is called after the Wait began. Spurious returns are allowed. Thread-safe.
class Wakeup {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    cv_.notify_all();
  }
  void Wait(int64_t timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t seen = generation_;
    cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return generation_ != seen; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
};

// A callback that may be replaced or cleared while other threads call it: once Set returns,
// the previous callback is neither running nor called again. Thread-safe.
class Callback {
 public:
  void Set(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = std::move(fn);
  }
  void operator()() {
    std::lock_guard<std::mutex> lock(mu_);
    if (fn_) fn_();
  }

 private:
  std::mutex mu_;
  std::function<void()> fn_;
};

}  // namespace regionmove
