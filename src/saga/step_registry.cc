#include "saga/step_registry.h"

#include <string>

namespace regionmove {

Status StepRegistry::Validate() const {
  std::vector<Step> all = Plan::Offline().steps();
  all.push_back(Step::kSyncing);  // the online plan's one more
  for (Step s : all) {
    if (s == Step::kRequested || s == Step::kCompleted || s == kCutoverStep) continue;
    if (!Find(s)) {
      return InvalidArgument("no step function registered for " + std::string(StepName(s)));
    }
  }
  if (!compensation_) return InvalidArgument("no compensation registered");
  return Status::Ok();
}

}  // namespace regionmove
