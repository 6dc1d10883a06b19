// flipping_routing (pre-flip checks), setting_up_reverse_replication and unblocking_writes.
#include "common/log.h"
#include "saga/steps/steps.h"

namespace regionmove::steps {

using nlohmann::json;

Status CheckBeforeFlip(const StepDeps&, StepContext& ctx) {
  json res = Resources(ctx);
  if (!res.contains("verified")) return Permanent("pre-flip check: the database was not verified");
  if (!res.value("blobs_done", false)) return Permanent("pre-flip check: blobs were not copied");
  if (!res.value("source_runtime_archived", false)) {
    return Permanent("pre-flip check: runtime was not copied");
  }
  return ctx.Checkpoint();  // last look at the stop token; the commit itself is serialised
}

Status SetUpReverseReplication(const StepDeps& deps, StepContext& ctx) {
  Migration& m = ctx.migration();
  // At most one replica per app: the older ones go once this move has passed its cutover.
  ASSIGN_OR_RETURN(auto replicas, deps.store->ListRetainedReplicas());
  for (const auto& r : replicas) {
    if (r.app_id != m.app_id || r.id == m.reverse_of || r.id == m.id) continue;
    // Past the cutover nothing may fail the move: a replica that will not go is reported.
    Status t = TeardownReplica(deps, r.id, "superseded by migration " + m.id, m.id);
    Note(deps, m,
         t.ok() ? "tore down the older replica of migration " + r.id
                : "could not tear down the older replica of migration " + r.id + ": " +
                      t.message() + " (DELETE /v1/source-replicas/" + r.id + ")");
  }
  if (IsFastReverse(m)) {
    // The forward move's replica is the primary now: its capacity is the app's own.
    Status s = deps.store->SetReplicaState(m.reverse_of, kReplicaReplicating, kReplicaPromoted);
    if (!s.ok() && s.reason() != "replica_state") return s;
    RETURN_IF_ERROR(deps.store->ReleaseReservation(m.reverse_of, m.dest_region));
  }
  Status s = deps.Fault("setting_up_reverse_replication.start");
  if (s.ok()) s = deps.plane->replicator()->Start(m.app_id, m.dest_region, m.source_region);
  if (!s.ok()) {
    // Never fails the move: it only loses the fast way back. A copy that nothing keeps
    // current would only cost money and mislead, so it goes now.
    m.source_replica_state = kReplicaNone;
    Status gone = DeleteReplicaData(deps, m.app_id, m.source_region, m.dest_region);
    Note(deps, m,
         "reverse replication not set up: " + s.message() + "; the copy in " + m.source_region +
             (gone.ok() ? " was deleted (a reverse takes the slow path)"
                        : " could not be deleted: " + gone.message()));
    Log(LogLevel::kWarn, "reverse_replication_failed",
        {{"migration_id", m.id}, {"error", s.ToString()}});
    return Status::Ok();
  }
  m.source_replica_state = kReplicaReplicating;
  return deps.store->Reserve(Reservation{m.id, m.source_region, m.app_id,
                                         AppBytes(Source(deps, m), m.app_id), deps.clock->NowMs()});
}

namespace {

// What this move measured (the app's bytes, the seconds its copy took, the pause so far), for
// the dry run's estimates. A copy's steps: the sync of an online move (the bulk copy and the
// catch-up before the pause), the dump, restore and blob copy of an offline one.
// What this move measured, for the dry runs of later moves (MigrationService::PlanMove): the
// app's bytes and the seconds its copy steps took. A fast reverse copies nothing.
void RecordRates(const StepDeps& deps, nlohmann::json& res, const Migration& m) {
  if (IsFastReverse(m) || res.contains("measured")) return;
  auto events = deps.store->ListEvents(m.id);
  if (!events.ok()) return;
  double copy_seconds = 0;
  for (const auto& e : *events) {
    if (e.type != "transition") continue;
    const bool copy = m.strategy == "online" ? e.from_step == Step::kSyncing
                                             : e.from_step == Step::kDumpingData ||
                                                   e.from_step == Step::kRestoringData ||
                                                   e.from_step == Step::kCopyingBlobs;
    if (copy) copy_seconds += static_cast<double>(e.ended_at_ms - e.started_at_ms) / 1000.0;
  }
  res["measured"] = {{"bytes", AppBytes(Dest(deps, m), m.app_id)}, {"copy_seconds", copy_seconds}};
}

}  // namespace

Status UnblockWrites(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  RETURN_IF_ERROR(deps.Fault("unblocking_writes"));
  RETURN_IF_ERROR(Dest(deps, m)->db->Unfence(m.app_id, ctx.epoch()));
  // How long writes were paused and how fast the copy went, for the move's record, its final
  // report and later dry runs.
  nlohmann::json res = Resources(ctx);
  const size_t recorded = res.size();
  const int64_t started = res.value("block_started_at_ms", int64_t{0});
  if (started > 0 && !res.contains("writes_paused_ms")) {
    res["writes_paused_ms"] = deps.clock->NowMs() - started;
  }
  RecordRates(deps, res, m);
  if (res.size() != recorded) RETURN_IF_ERROR(SaveResources(ctx, res));  // not again on a retry
  // The app now lives in dest: its reservation there has done its job.
  RETURN_IF_ERROR(deps.store->ReleaseReservation(m.id, m.dest_region));
  RemoveStaged(deps, m);
  return Status::Ok();
}

}  // namespace regionmove::steps
