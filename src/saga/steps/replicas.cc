// Teardown of a retained source replica (SPEC §5): an operation on the app, serialised with its
// migrations by the control store, durable (an interrupted one is resumed by ResumeTeardowns),
// and safe to call concurrently (a second caller waits for the first and answers as it does).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "saga/steps/steps.h"

namespace regionmove {

namespace {

std::string NewOwner() {
  static std::atomic<uint64_t> next{0};
  return "pid" + std::to_string(::getpid()) + "/teardown/" + std::to_string(next++);
}

}  // namespace

Status DeleteReplicaData(const StepDeps& deps, const std::string& app_id,
                         const std::string& replica_region, const std::string& serving_region) {
  RegionPlane* replica = deps.plane->Region(replica_region);
  if (!replica) return Status::Ok();  // the region left the config: nothing here to delete
  RETURN_IF_ERROR(deps.Fault("teardown.before_data"));
  Status s = deps.plane->replicator()->Stop(app_id, serving_region, replica_region);
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  RETURN_IF_ERROR(replica->db->Drop(app_id));
  RETURN_IF_ERROR(deps.Fault("teardown.after_drop"));
  RETURN_IF_ERROR(replica->blobs->DeleteNamespace(app_id));
  return replica->runtime->DeleteAll(app_id, RuntimeStore::Which::kArchived);
}

Status TeardownReplica(const StepDeps& deps, const std::string& migration_id,
                       const std::string& reason, const std::string& by_migration, bool wait) {
  const std::string owner = NewOwner();
  const int64_t lease_ms = int64_t{deps.config->lease_seconds} * 1000;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool waited = false;
  for (;;) {
    Status begun =
        deps.store->BeginTeardown(migration_id, by_migration, owner, deps.clock->NowMs(), lease_ms);
    if (begun.ok()) break;
    if (begun.reason() == "not_replicating" && waited) {
      // The teardown this call waited for has finished: answer as it did.
      ASSIGN_OR_RETURN(Migration f, deps.store->GetMigration(migration_id));
      if (f.source_replica_state == kReplicaTornDown) return Status::Ok();
    }
    if (begun.reason() != "teardown_running" || !wait) return begun;
    if (std::chrono::steady_clock::now() > deadline) {
      return Unavailable("the replica of migration " + migration_id +
                         " is still being torn down by another caller; retry");
    }
    waited = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSIGN_OR_RETURN(Migration f, deps.store->GetMigration(migration_id));
  ASSIGN_OR_RETURN(App app, deps.store->GetApp(f.app_id));
  if (app.region == f.source_region) {
    // Never delete the copy that serves the app (a state the serialisation above should make
    // impossible; kept as the last guard before a destructive action).
    return Permanent("refusing to tear down " + f.source_region + ": it serves app " + f.app_id);
  }
  RETURN_IF_ERROR(DeleteReplicaData(deps, f.app_id, f.source_region, f.dest_region));
  return deps.store->FinishTeardown(
      f.id, owner,
      InstantEvent(f, "replica_torn_down",
                   "source replica in " + f.source_region + " torn down: " + reason,
                   deps.clock->NowMs()));
}

Status ResumeTeardowns(const StepDeps& deps) {
  ASSIGN_OR_RETURN(auto retained, deps.store->ListRetainedReplicas());
  Status first;
  for (const auto& m : retained) {
    if (m.source_replica_state != kReplicaTearingDown) continue;
    Status s = TeardownReplica(deps, m.id, "resumed after an interruption", "", /*wait=*/false);
    // A live teardown elsewhere, or one that just finished, is not this loop's error, and
    // neither is a migration of the app in flight: it tears older replicas down itself, or this
    // loop finishes the job once it has ended.
    if (!s.ok() && s.reason() != "teardown_running" && s.reason() != "not_replicating" &&
        s.reason() != "app_busy" && s.code() != StatusCode::kUnavailable && first.ok()) {
      first = s;
    }
  }
  return first;
}

}  // namespace regionmove
