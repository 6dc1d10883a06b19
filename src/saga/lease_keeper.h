#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "store/control_store.h"

namespace regionmove {

// Renews a migration's lease from a background thread while a step runs, so that a step that
// spends a long time inside one call (a big verification, a slow disk) keeps its lease even
// between its own checkpoints. Stops renewing, and reports lost(), once the epoch moved on.
// The thread waits in real time; the lease it writes is in `clock` time.
class LeaseKeeper {
 public:
  LeaseKeeper(ControlStore* store, Clock* clock, std::string migration_id, int64_t epoch,
              int64_t lease_ms);
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  bool lost() const { return lost_.load(); }

 private:
  void Loop();

  ControlStore* store_;
  Clock* clock_;
  std::string id_;
  int64_t epoch_;
  int64_t lease_ms_;
  std::atomic<bool> lost_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace regionmove
