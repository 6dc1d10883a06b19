#include "api/write_buffer.h"

#include <thread>

namespace regionmove {

WriteBuffer::Outcome WriteBuffer::Wait(const std::string& app,
                                       std::chrono::steady_clock::time_point deadline,
                                       const std::function<bool()>& still_blocked) {
  std::unique_lock<std::mutex> lock(mu_);
  AppWait& w = apps_[app];
  if (w.waiters >= max_per_app_ || total_ >= max_total_) {
    if (w.waiters == 0) apps_.erase(app);
    return Outcome::kFull;
  }
  ++w.waiters;
  ++total_;
  Outcome outcome = Outcome::kTimedOut;
  while (true) {
    if (w.cleared) {
      outcome = Outcome::kCleared;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (!w.polling) {
      // This waiter polls for all of the app's waiters.
      w.polling = true;
      lock.unlock();
      bool blocked = still_blocked();
      if (blocked) std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms_));
      lock.lock();
      w.polling = false;
      if (!blocked) w.cleared = true;
      cv_.notify_all();
    } else {
      cv_.wait_until(lock, deadline);
    }
  }
  --total_;
  if (--w.waiters == 0) apps_.erase(app);  // `w` is not used past here
  return outcome;
}

int WriteBuffer::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

}  // namespace regionmove
