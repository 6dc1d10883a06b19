#include "saga/lease_keeper.h"

#include <chrono>

namespace regionmove {

LeaseKeeper::LeaseKeeper(ControlStore* store, Clock* clock, std::string migration_id, int64_t epoch,
                         int64_t lease_ms)
    : store_(store),
      clock_(clock),
      id_(std::move(migration_id)),
      epoch_(epoch),
      lease_ms_(lease_ms) {
  thread_ = std::thread([this] { Loop(); });
}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseKeeper::Loop() {
  auto interval = std::chrono::milliseconds(std::max<int64_t>(1, lease_ms_ / 3));
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, interval, [this] { return stop_; })) {
    Status s = store_->Heartbeat(id_, epoch_, clock_->NowMs() + lease_ms_);
    if (s.reason() == "fenced") {
      lost_ = true;
      return;
    }
  }
}

}  // namespace regionmove
