#include "common/fault_points.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

namespace regionmove {

void FaultPoints::Arm(const std::string& point, Status error, int times, int skip) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_[point] = Fault{std::move(error), times, skip};
}

void FaultPoints::ArmDelay(const std::string& point, int ms, int times) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_[point] = Fault{Status::Ok(), times, 0, ms};
}

Status FaultPoints::ArmFromSpec(const std::string& spec) {
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(';', start);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos) return InvalidArgument("fault spec '" + item + "' has no '='");
    std::string point = item.substr(0, eq);
    std::vector<std::string> parts;
    std::string rest = item.substr(eq + 1);
    for (size_t p = 0; p <= rest.size();) {
      size_t colon = rest.find(':', p);
      if (colon == std::string::npos) colon = rest.size();
      parts.push_back(rest.substr(p, colon - p));
      p = colon + 1;
    }
    auto number = [](const std::string& s, int* out) {
      if (s.empty() || s.size() > 7 || s.find_first_not_of("0123456789") != std::string::npos) {
        return false;
      }
      *out = std::stoi(s);
      return true;
    };
    int a = 0, b = 1;
    if (parts[0] == "delay" && parts.size() >= 2 && number(parts[1], &a) &&
        (parts.size() < 3 || number(parts[2], &b))) {
      ArmDelay(point, a, b);
    } else if (parts[0] == "error" && parts.size() == 2 && number(parts[1], &b)) {
      Arm(point, Unavailable("injected fault at " + point), b);
    } else if (parts[0] == "kill" && (parts.size() == 1 || number(parts[1], &a))) {
      std::lock_guard<std::mutex> lock(mu_);
      faults_[point] = Fault{Status(), 1, a, 0, true};
    } else {
      return InvalidArgument("fault spec '" + item +
                             "' is not delay:MS[:TIMES], error:TIMES or kill[:SKIP]");
    }
  }
  return Status::Ok();
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
  if (it->second.kill) {
    // A crash at this instruction, as a power cut or the OOM killer would make it: no
    // destructors, no flushes, no atexit.
    ::kill(::getpid(), SIGKILL);
  }
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
