#pragma once

#include <cstdint>
#include <string>

#include "domain/step.h"

namespace regionmove {

// Why a migration is running its compensation (undoing what it created).
enum class Compensation { kNone = 0, kAbort, kFailure };

// State of the retained source replica after a move (SPEC §1).
inline constexpr const char* kReplicaNone = "none";
inline constexpr const char* kReplicaReplicating = "replicating";
inline constexpr const char* kReplicaPromoted = "promoted";
// Retained, but the serving database changed in a way replication does not carry (DDL on
// PostgreSQL): replication is stopped, and a reverse takes the slow path.
inline constexpr const char* kReplicaDiverged = "diverged";
inline constexpr const char* kReplicaTearingDown = "tearing_down";
inline constexpr const char* kReplicaTornDown = "torn_down";

struct Progress {
  int64_t bytes_done = 0;
  int64_t bytes_total = 0;
  int64_t items_done = 0;
  int64_t items_total = 0;
};

// One attempt to move one app. A plain record: the control store persists every field; the
// saga engine is the only writer of the execution fields, always through an epoch CAS.
struct Migration {
  std::string id;  // UUID v4
  std::string app_id;
  std::string owner;
  std::string kind = "move";  // "move" | "reverse"
  std::string reverse_of;     // forward migration id when kind == "reverse"
  std::string reverse_path;   // "fast" | "slow" for reverses
  std::string strategy = "offline";
  std::string source_region;
  std::string dest_region;

  Step current_step = Step::kRequested;
  Step stopped_at = Step::kRequested;  // the step a failed/aborted migration stopped in
  bool admitted = false;               // passed the concurrency caps in kRequested
  bool abort_requested = false;
  bool cutover_committed = false;  // set in the same transaction as the routing flip
  bool needs_repair = false;
  Compensation compensation = Compensation::kNone;
  std::string source_replica_state = kReplicaNone;

  int attempt = 0;      // attempts used in the current step (or compensation)
  int retry_count = 0;  // retries over the whole migration
  std::string last_error;
  int64_t next_attempt_at_ms = 0;

  int64_t initiated_at_ms = 0;
  int64_t step_started_at_ms = 0;
  int64_t completed_at_ms = 0;  // set at any terminal state
  int64_t updated_at_ms = 0;

  // Lease and fencing. epoch increases on every claim; writes compare-and-set on it.
  std::string lease_owner;
  int64_t lease_expires_at_ms = 0;
  int64_t epoch = 0;

  Progress progress;
  std::string resources = "{}";  // JSON object: what the steps created

  bool terminal() const { return IsTerminal(current_step); }
  // Abort is possible until the routing flip has committed.
  bool abortable() const { return !terminal() && !cutover_committed; }
  bool writes_blocked() const;
  // The steps this migration walks (its strategy's).
  const Plan& plan() const { return Plan::For(strategy); }
  MigrationStatus status() const;
};

// One row of a migration's history.
struct MigrationEvent {
  int64_t seq = 0;  // assigned by the store, increasing per migration
  std::string migration_id;
  std::string type;  // "transition" | "retry" | "abort_requested" | "compensated" | "note" ...
  Step step = Step::kRequested;
  Step from_step = Step::kRequested;
  Step to_step = Step::kRequested;
  int attempt = 0;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  std::string error;
  int64_t bytes = 0;
  std::string message;
};

// An event of `m` at one instant `now_ms` that changes no step (a note, a replica's change).
MigrationEvent InstantEvent(const Migration& m, std::string type, std::string message,
                            int64_t now_ms);

}  // namespace regionmove
