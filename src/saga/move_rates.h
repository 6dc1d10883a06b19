#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace regionmove {

// What the moves that completed in this process measured, for the dry run's estimates: how fast
// an app's bytes were copied (over the seconds of its copy steps) and how long its writes
// paused, per strategy, over the last kKept moves of each. Thread-safe.
class MoveRates {
 public:
  static constexpr size_t kKept = 20;
  struct Sample {
    int64_t bytes = 0;
    double copy_seconds = 0;
    double pause_seconds = 0;
  };
  struct Estimate {
    int moves = 0;  // 0: nothing measured yet
    double bytes_per_second = 0;
    double pause_seconds = 0;  // the mean
  };

  void Record(const std::string& strategy, const Sample& s) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& kept = samples_[strategy];
    kept.push_back(s);
    if (kept.size() > kKept) kept.pop_front();
  }

  Estimate Get(const std::string& strategy) const {
    std::lock_guard<std::mutex> lock(mu_);
    Estimate e;
    auto it = samples_.find(strategy);
    if (it == samples_.end() || it->second.empty()) return e;
    double bytes = 0, seconds = 0, pause = 0;
    for (const auto& s : it->second) {
      bytes += static_cast<double>(s.bytes);
      seconds += s.copy_seconds;
      pause += s.pause_seconds;
    }
    e.moves = static_cast<int>(it->second.size());
    e.bytes_per_second = seconds > 0 ? bytes / seconds : 0;
    e.pause_seconds = pause / e.moves;
    return e;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::deque<Sample>> samples_;
};

}  // namespace regionmove
