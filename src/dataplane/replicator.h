#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "dataplane/database.h"

namespace regionmove {

// How far a replica is behind its primary. Positions are the engine's (a change-log sequence
// number on SQLite, a WAL LSN on PostgreSQL): only comparable within one replication.
struct ReplicationLag {
  int64_t bytes = 0;     // of changes the replica has not applied yet
  double seconds = 0;    // how old the oldest of them is; -1 when the engine cannot tell
  int64_t changes = -1;  // change records pending, when the engine counts them (else -1)
  int64_t primary_position = 0;
  int64_t replica_position = 0;
  // Changes the replica failed to apply since replication started (PostgreSQL: the apply
  // worker's errors, e.g. after DDL on the primary); a growing count means a broken replica.
  int64_t apply_errors = 0;
  // Why the replica can no longer follow its primary (PostgreSQL: DDL made outside regionmove
  // on either side since Start), or empty. A diverged replica is good for a slow path only.
  std::string diverged;
  bool caught_up() const { return replica_position >= primary_position; }
};

// Keeps an app's database in a replica region current with its primary (the region serving it),
// for the retained source replica after a move. No change committed on the primary after
// Start() is lost or applied twice, whatever crashes on either side. One replicator serves all
// regions of one database engine (DataPlane::replicator() picks it; regions of different
// engines are refused with Permanent("engine_mismatch")). Thread-safe.
class Replicator {
 public:
  virtual ~Replicator() = default;
  // Starts recording the primary's writes for the replica, which must hold the same data now
  // (both fenced during a move). Idempotent.
  virtual Status Start(const std::string& app_id, const std::string& primary_region,
                       const std::string& replica_region) = 0;
  // Starts replication while the primary keeps taking writes (an online copy): begins recording
  // the primary's changes at a consistent point, runs `copy` with `at` (what
  // Database::ExportCopy needs to read the primary exactly as of that point; valid only while
  // `copy` runs), then has the replica continue from that point. Every change committed after
  // the point reaches the replica through Pump, none before it (those are in the copy). The
  // replica region must not replicate the app yet; run again from the start after a failure.
  virtual Status StartFromSnapshot(const std::string& app_id, const std::string& primary_region,
                                   const std::string& replica_region,
                                   const std::function<Status(const nlohmann::json& at)>& copy) = 0;
  // Brings the replica up to the primary's position as of the call (applying what is pending,
  // or waiting a short while for an engine that applies by itself); returns the lag afterwards,
  // caught_up() when nothing committed before the call is missing.
  // Conflict("replica_diverged") when the replica has diverged (see ReplicationLag::diverged).
  virtual Result<ReplicationLag> Pump(const std::string& app_id, const std::string& primary_region,
                                      const std::string& replica_region) = 0;
  // The background upkeep of a running replication, called every few seconds: applies what
  // is pending where the engine needs an applier (Pump), nothing where the database applies
  // by itself. Returns without waiting; Conflict("replica_diverged") as Pump.
  virtual Status Tick(const std::string& app_id, const std::string& primary_region,
                      const std::string& replica_region) {
    return Pump(app_id, primary_region, replica_region).status();
  }
  virtual Result<ReplicationLag> Lag(const std::string& app_id, const std::string& primary_region,
                                     const std::string& replica_region) = 0;
  // Copies to the replica what the change stream does not carry (PostgreSQL: sequence
  // values), so that a fenced primary and its caught-up replica are equal. Run by a fast
  // reverse before it verifies. Idempotent.
  virtual Status SyncRest(const std::string& app_id, const std::string& primary_region,
                          const std::string& replica_region) {
    (void)app_id, (void)primary_region, (void)replica_region;
    return Status::Ok();
  }
  // The rows the change stream has changed in the replica since the copy of StartFromSnapshot,
  // as a partial DigestScope: a table's keys, or a table whole when a change to it has no key
  // (TRUNCATE, a table without a primary key). A whole scope when the stream carried a change
  // that is not to rows (DDL), or this replication did not start from a snapshot. The replica
  // records them in the transaction that applies each change, so with the whole check at the
  // snapshot they are what a check under the pause must compare (docs/decisions.md).
  virtual Result<DigestScope> Changed(const std::string& app_id, const std::string& primary_region,
                                      const std::string& replica_region) = 0;
  // Stops replicating and removes what replication kept on either side (a change log; a slot,
  // a publication, a subscription). Idempotent. An error means something may be left (a slot
  // on a primary that cannot be reached): the caller retries, as teardown does.
  virtual Status Stop(const std::string& app_id, const std::string& primary_region,
                      const std::string& replica_region) = 0;
};

}  // namespace regionmove
