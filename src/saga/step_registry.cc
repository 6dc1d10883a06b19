#include "saga/step_registry.h"

#include <string>

namespace regionmove {

Status StepRegistry::Validate() const {
  for (int i = StepIndex(Step::kReservingDest); i < StepIndex(Step::kCompleted); ++i) {
    Step s = static_cast<Step>(i);
    if (s == kCutoverStep) continue;
    if (!Find(s)) {
      return InvalidArgument("no step function registered for " + std::string(StepName(s)));
    }
  }
  if (!compensation_) return InvalidArgument("no compensation registered");
  return Status::Ok();
}

}  // namespace regionmove
