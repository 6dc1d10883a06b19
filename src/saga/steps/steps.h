#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/fault_points.h"
#include "config/config.h"
#include "dataplane/data_plane.h"
#include "saga/engine.h"
#include "saga/step_registry.h"
#include "store/control_store.h"

namespace regionmove {

// What the real steps need. Pointers are borrowed and outlive the registry.
struct StepDeps {
  ControlStore* store = nullptr;
  DataPlane* plane = nullptr;
  Clock* clock = nullptr;
  const Config* config = nullptr;
  FaultPoints* faults = nullptr;  // test hooks; may be null

  Status Fault(const std::string& point) const {
    return faults ? faults->Hit(point) : Status::Ok();
  }
};

// Registers every step of SPEC §2 (forward move, fast and slow reverse) and the compensation
// of SPEC §4 on the embedded data plane ports.
void RegisterMoveSteps(StepRegistry* registry, const StepDeps& deps);

// Tears down the retained source replica of completed migration `migration_id` (SPEC §5):
// stops replication, drops the replica database, deletes its blobs and archived runtime rows,
// releases its capacity, records an event with `reason`. An operation on the app, serialised
// by the store: Conflict("app_busy") while a migration of the app other than `by_migration`
// is active; Conflict("not_replicating") when there is no replica to tear down. A call that
// overlaps another teardown of the same replica waits for it (up to a minute) and answers Ok
// when it ends; with `wait` false it answers Conflict("teardown_running") at once.
Status TeardownReplica(const StepDeps& deps, const std::string& migration_id,
                       const std::string& reason, const std::string& by_migration = "",
                       bool wait = true);
// Deletes the copy of an app that `replica_region` keeps (replication from `serving_region`
// stopped, database dropped, blobs and archived runtime rows deleted). Idempotent.
// REQUIRES: the app is served from elsewhere.
Status DeleteReplicaData(const StepDeps& deps, const std::string& app_id,
                         const std::string& replica_region, const std::string& serving_region);
// Finishes teardowns that a crash interrupted (replicas left in tearing_down whose lease ran
// out). Called from the background loop.
Status ResumeTeardowns(const StepDeps& deps);

// What a region holds besides reservations: its apps other than `app_id`, and their bytes.
struct RegionUsage {
  int64_t apps = 0;
  int64_t bytes = 0;
};
Result<RegionUsage> UsageWithout(const StepDeps& deps, const std::string& region,
                                 const std::string& app_id);

// ---- shared by the step files ----
namespace steps {

// The migration's resources as JSON (an empty object when unset or unreadable).
nlohmann::json Resources(StepContext& ctx);
// Writes `res` into the migration and persists it: a write-ahead record, for what compensation
// or a retry must know exists before the step goes on.
Status SaveResources(StepContext& ctx, const nlohmann::json& res);
// Writes `res` into the migration, persisted with the step's end (its transition or its retry
// record) rather than on its own: for what a step learned last, which a crash before its end
// makes the step do again (each step is idempotent).
void KeepResources(StepContext& ctx, const nlohmann::json& res);
RegionPlane* Source(const StepDeps& deps, const Migration& m);
RegionPlane* Dest(const StepDeps& deps, const Migration& m);
bool IsFastReverse(const Migration& m);
// A migration whose database reaches dest through replication rather than a copy under the
// block: a fast reverse (the retained replica), an online move (synced before the block).
bool IsStreamed(const Migration& m);
// The prefix of the files a copy of migration `m` stages ("<staging_dir>/<id>").
std::string StagingPath(const StepDeps& deps, const Migration& m);
// Removes every file staged for `m`.
void RemoveStaged(const StepDeps& deps, const Migration& m);
// Appends a "note" event to the migration's history.
void Note(const StepDeps& deps, const Migration& m, const std::string& message);

Status Validate(const StepDeps& deps, StepContext& ctx);
Status ReserveDest(const StepDeps& deps, StepContext& ctx);
Status Sync(const StepDeps& deps, StepContext& ctx);
Status BlockWrites(const StepDeps& deps, StepContext& ctx);
Status DumpData(const StepDeps& deps, StepContext& ctx);
Status RestoreData(const StepDeps& deps, StepContext& ctx);
Status CopyBlobs(const StepDeps& deps, StepContext& ctx);
Status CopyRuntime(const StepDeps& deps, StepContext& ctx);
Status CheckBeforeFlip(const StepDeps& deps, StepContext& ctx);
Status SetUpReverseReplication(const StepDeps& deps, StepContext& ctx);
Status UnblockWrites(const StepDeps& deps, StepContext& ctx);
Status Compensate(const StepDeps& deps, StepContext& ctx);
// The pause budget of an online move (saga.block_budget_seconds), checked before each step of
// the pause up to the flip. Ok within it. Past it, the app is given back to its source (writes
// resume) and the destination is emptied and made afresh; the migration's resources, in memory,
// are reset for a new sync, and the answer is Conflict("block_budget"), on which the engine
// records the return to syncing together with those resources. The third pause past its budget
// is Permanent("block_budget_exhausted") instead: the move fails, compensated.
inline constexpr int kMaxBlockAttempts = 3;

// The catch-up an online move's pause would need now: the replica's distance to the primary
// (positions) over the apply rate measured between two samples (positions per second). 0 when
// caught up; nullopt when nothing was applied between the samples while behind (no rate yet).
std::optional<double> PredictCatchUpSeconds(int64_t earlier_replica, int64_t earlier_ms,
                                            int64_t replica, int64_t primary, int64_t now_ms);
Status CheckBlockBudget(const StepDeps& deps, StepContext& ctx);
// Removes what migration `m` created in its destination (resources `res`), checked with
// `token`, and its reservation there unless `keep_reservation`; returns what could not be
// removed, described.
std::vector<std::string> CleanDest(const StepDeps& deps, const Migration& m,
                                   const nlohmann::json& res, int64_t token,
                                   bool keep_reservation = false);
// Retries the destination cleanup that compensations could not finish (resources.debris),
// unless a later migration has used that region since. Called from the background loop.
Status RetryDebris(const StepDeps& deps);

}  // namespace steps
}  // namespace regionmove
