#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace regionmove {

// Holds writes that arrive while an online move has an app's writes paused, so that they are
// served after the pause instead of answered 503 (SPEC §6, buffering). The request's body is not
// read while it waits (it stays in the socket), so a waiting request costs its connection's
// thread and nothing more; the number of waiters is bounded per app and overall.
//
// One waiter per app polls `still_blocked` (a control-store read) every `poll_ms`; the others
// wait on it. Thread-safe.
class WriteBuffer {
 public:
  enum class Outcome {
    kCleared,   // the pause ended: serve the request
    kTimedOut,  // still paused at the deadline
    kFull,      // too many waiters: answer at once
  };
  WriteBuffer(int max_per_app, int max_total, int poll_ms = 20)
      : max_per_app_(max_per_app), max_total_(max_total), poll_ms_(poll_ms) {}

  Outcome Wait(const std::string& app, std::chrono::steady_clock::time_point deadline,
               const std::function<bool()>& still_blocked);
  int waiting() const;

 private:
  struct AppWait {
    int waiters = 0;
    bool polling = false;
    bool cleared = false;
  };
  const int max_per_app_;
  const int max_total_;
  const int poll_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, AppWait> apps_;
  int total_ = 0;
};

}  // namespace regionmove
