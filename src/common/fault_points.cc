#include "common/fault_points.h"

#include <chrono>
#include <thread>

namespace regionmove {

void FaultPoints::Arm(const std::string& point, Status error, int times, int skip) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_[point] = Fault{std::move(error), times, skip};
}

void FaultPoints::ArmDelay(const std::string& point, int ms, int times) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_[point] = Fault{Status::Ok(), times, 0, ms};
}

void FaultPoints::DisarmAll() {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.clear();
}

Status FaultPoints::Hit(const std::string& point) {
  std::lock_guard<std::mutex> lock(mu_);
  hits_[point]++;
  auto it = faults_.find(point);
  if (it == faults_.end() || it->second.times <= 0) return Status::Ok();
  if (it->second.skip > 0) {
    it->second.skip--;
    return Status::Ok();
  }
  it->second.times--;
  if (it->second.delay_ms > 0) {
    int ms = it->second.delay_ms;
    mu_.unlock();  // sleep without blocking other fault points
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    mu_.lock();
    return Status::Ok();
  }
  return it->second.error;
}

int FaultPoints::hits(const std::string& point) {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_[point];
}

}  // namespace regionmove
