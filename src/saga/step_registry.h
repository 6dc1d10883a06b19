#pragma once

#include <functional>
#include <map>

#include "common/status.h"
#include "domain/step.h"

namespace regionmove {

class StepContext;

// What the saga runs for each step, and how it undoes a migration before the cutover.
//
// A step function must be idempotent and resumable: it may run again after a crash or a retry
// with whatever it recorded in the migration's resources (StepContext::SaveResources). It
// returns Ok to advance, kUnavailable to be retried with backoff, kCancelled when the stop
// token fired, and any other code to give up the step at once.
//
// kRequested and kFlippingRouting are special: the engine itself admits a migration to the
// concurrency caps after the kRequested function (validation) succeeds, and commits the routing
// flip after the kFlippingRouting function (pre-flip checks) succeeds. Both may be left
// unregistered; every other step between them must be registered.
//
// The compensation undoes everything recorded in the resources, in any order of partial
// completion, and is idempotent too. Not thread-safe to modify; read-only once the engine runs.
class StepRegistry {
 public:
  using StepFn = std::function<Status(StepContext&)>;

  void Register(Step step, StepFn fn) { steps_[step] = std::move(fn); }
  void RegisterCompensation(StepFn fn) { compensation_ = std::move(fn); }

  // nullptr when nothing is registered for `step`.
  const StepFn* Find(Step step) const {
    auto it = steps_.find(step);
    return it == steps_.end() ? nullptr : &it->second;
  }
  const StepFn* compensation() const { return compensation_ ? &compensation_ : nullptr; }

  // Ok when every work step and the compensation are registered.
  Status Validate() const;

 private:
  std::map<Step, StepFn> steps_;
  StepFn compensation_;
};

}  // namespace regionmove
