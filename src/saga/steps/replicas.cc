#include "saga/steps/steps.h"

namespace regionmove {

Status TeardownReplica(const StepDeps& deps, const std::string& migration_id,
                       const std::string& reason) {
  ASSIGN_OR_RETURN(Migration f, deps.store->GetMigration(migration_id));
  auto not_replicating = [&] {
    return Conflict("the source replica of migration " + migration_id + " is " +
                        (f.current_step == Step::kCompleted ? f.source_replica_state
                                                            : std::string("not retained")),
                    "not_replicating");
  };
  if (f.current_step != Step::kCompleted) return not_replicating();
  if (f.source_replica_state == kReplicaReplicating) {
    Status s = deps.store->SetReplicaState(f.id, kReplicaReplicating, kReplicaTearingDown);
    if (!s.ok()) return s.reason() == "replica_state" ? not_replicating() : s;
  } else if (f.source_replica_state != kReplicaTearingDown) {
    return not_replicating();
  }
  ASSIGN_OR_RETURN(App app, deps.store->GetApp(f.app_id));
  if (app.region == f.source_region) {
    return Conflict("refusing to tear down " + f.source_region + ": it serves app " + f.app_id,
                    "not_replicating");
  }
  RegionPlane* replica = deps.plane->Region(f.source_region);
  if (replica) {
    Status s = deps.plane->replicator()->Stop(f.app_id, f.dest_region, f.source_region);
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    RETURN_IF_ERROR(replica->db->Drop(f.app_id));
    RETURN_IF_ERROR(replica->blobs->DeleteNamespace(f.app_id));
    RETURN_IF_ERROR(replica->runtime->DeleteAll(f.app_id, RuntimeStore::Which::kArchived));
  }
  RETURN_IF_ERROR(deps.store->ReleaseReservation(f.id, f.source_region));
  RETURN_IF_ERROR(deps.store->SetReplicaState(f.id, kReplicaTearingDown, kReplicaTornDown));
  MigrationEvent e;
  e.migration_id = f.id;
  e.type = "replica_torn_down";
  e.step = e.from_step = e.to_step = f.current_step;
  e.started_at_ms = e.ended_at_ms = deps.clock->NowMs();
  e.message = "source replica in " + f.source_region + " torn down: " + reason;
  return deps.store->AppendEvent(e);
}

}  // namespace regionmove
