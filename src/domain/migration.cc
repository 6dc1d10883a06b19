#include "domain/migration.h"

namespace regionmove {

bool Migration::writes_blocked() const {
  // From the moment blocking_writes starts until unblocking_writes (or compensation) ends.
  return plan().WritesBlocked(current_step);
}

MigrationStatus Migration::status() const {
  switch (current_step) {
    case Step::kCompleted:
      return MigrationStatus::kCompleted;
    case Step::kAborted:
      return MigrationStatus::kAborted;
    case Step::kFailed:
      return MigrationStatus::kFailed;
    default:
      break;
  }
  if (compensation != Compensation::kNone || (abort_requested && !cutover_committed)) {
    return MigrationStatus::kAborting;
  }
  if (current_step == Step::kRequested && !admitted) return MigrationStatus::kQueued;
  return MigrationStatus::kRunning;
}

}  // namespace regionmove
