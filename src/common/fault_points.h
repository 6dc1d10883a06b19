#pragma once

#include <map>
#include <mutex>
#include <string>

#include "common/status.h"

namespace regionmove {

// Named points where tests inject failures into real code paths (a step that fails after its
// first page, a crash before a commit). Disarmed points cost one map lookup under a mutex.
// Thread-safe.
class FaultPoints {
 public:
  // After `skip` passing hits, the next `times` hits of `point` return `error`.
  void Arm(const std::string& point, Status error, int times = 1, int skip = 0);
  // The next `times` hits of `point` sleep `ms` (real time) before passing.
  void ArmDelay(const std::string& point, int ms, int times = 1);
  void DisarmAll();
  // Arms points from a spec such as "unblocking_writes=delay:1500:1;copying_blobs=error:2"
  // (delay:MS[:TIMES], error:TIMES, the error being retryable, or kill[:SKIP], which SIGKILLs
  // the process at the hit after SKIP passing hits). For the
  // REGIONMOVE_FAULTS environment variable that out-of-process tests set; InvalidArgument when
  // malformed.
  Status ArmFromSpec(const std::string& spec);
  // Ok unless an armed fault fires.
  Status Hit(const std::string& point);
  int hits(const std::string& point);

 private:
  struct Fault {
    Status error;
    int times = 0;
    int skip = 0;
    int delay_ms = 0;
    bool kill = false;  // SIGKILL the process at the hit
  };
  std::mutex mu_;
  std::map<std::string, Fault> faults_;
  std::map<std::string, int> hits_;
};

}  // namespace regionmove
