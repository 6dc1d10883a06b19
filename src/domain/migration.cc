#include "domain/migration.h"

namespace regionmove {

bool Migration::writes_blocked() const {
  // From the moment blocking_writes starts until unblocking_writes (or compensation) ends.
  return plan().WritesBlocked(current_step);
}

MigrationEvent InstantEvent(const Migration& m, std::string type, std::string message,
                            int64_t now_ms) {
  MigrationEvent e;
  e.migration_id = m.id;
  e.type = std::move(type);
  e.step = e.from_step = e.to_step = m.current_step;
  e.started_at_ms = e.ended_at_ms = now_ms;
  e.message = std::move(message);
  return e;
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
