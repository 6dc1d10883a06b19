#include "saga/step_registry.h"

#include <string>

namespace regionmove {

Status StepRegistry::Validate() const {
  for (const Plan* plan : {&Plan::Offline(), &Plan::Online()}) {
    for (Step s : plan->steps()) {
      if (s == Step::kRequested || s == Step::kCompleted || s == kCutoverStep) continue;
      if (!Find(s)) {
        return InvalidArgument("no step function registered for " + std::string(StepName(s)));
      }
    }
  }
  if (!compensation_) return InvalidArgument("no compensation registered");
  return Status::Ok();
}

}  // namespace regionmove
