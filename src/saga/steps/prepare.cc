// reserving_dest and blocking_writes.
#include "saga/steps/steps.h"
#include "store/estimates.h"

namespace regionmove::steps {

using nlohmann::json;

Status ReserveDest(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  json res = Resources(ctx);
  RegionPlane* dest = Dest(deps, m);
  if (!res.value("reserved", false)) {
    int64_t need = AppBytes(Source(deps, m), m.app_id);
    // Counted and reserved in one transaction, so concurrent moves cannot overshoot the caps.
    // Made, then recorded: a crash in between repeats it (idempotent) instead of skipping it.
    ASSIGN_OR_RETURN(RegionUsage used, UsageWithout(deps, m.dest_region, m.app_id));
    Status s = deps.store->ReserveWithinCapacity(
        Reservation{m.id, m.dest_region, m.app_id, need, deps.clock->NowMs()}, used.apps,
        used.bytes, dest->config.max_apps, dest->config.max_bytes);
    if (s.reason() == "insufficient_capacity") {
      return Status(StatusCode::kPermanent, s.message(), "insufficient_capacity");
    }
    RETURN_IF_ERROR(s);
    res["reserved"] = true;
    // How long the write pause should last (the refused writers' Retry-After counts down from
    // it, from the first refusal on): these bytes at the rates the last moves measured.
    auto estimate = EstimateMove(*deps.store, IsStreamed(m) ? "online" : "offline",
                                 static_cast<double>(need), deps.config->max_block_seconds);
    if (estimate.ok()) res["block_estimate_seconds"] = estimate->write_block_seconds;
    // Recorded with what comes next: compensation releases the reservation whether or not it
    // was recorded, and a retry makes it again (idempotent).
    KeepResources(ctx, res);
    RETURN_IF_ERROR(deps.Fault("reserving_dest.after_reserve"));
  }
  // A fast reverse lands on the retained replica, which already holds everything.
  if (IsFastReverse(m) || res.value("dest_created", false)) return Status::Ok();

  // A replica of this app that an earlier move left in dest is replaced by this move.
  ASSIGN_OR_RETURN(auto replicas, deps.store->ListRetainedReplicas());
  for (const auto& r : replicas) {
    if (r.app_id == m.app_id && r.source_region == m.dest_region) {
      RETURN_IF_ERROR(TeardownReplica(deps, r.id, "replaced by migration " + m.id, m.id));
      Note(deps, m, "replaced the retained replica of migration " + r.id + " in " + m.dest_region);
    }
  }
  res["dest_created"] = true;  // recorded first: compensation drops whatever was created
  RETURN_IF_ERROR(SaveResources(ctx, res));
  // Nothing of a stale copy may win over the data this move brings.
  RETURN_IF_ERROR(dest->db->Drop(m.app_id, ctx.epoch()));
  RETURN_IF_ERROR(dest->blobs->DeleteNamespace(m.app_id, ctx.epoch()));
  RETURN_IF_ERROR(dest->runtime->DeleteAll(m.app_id, RuntimeStore::Which::kAll, ctx.epoch()));
  // The blob namespace needs no making (BlobStore): emptied above, it is the app's.
  return dest->db->Create(m.app_id);
}

Status BlockWrites(const StepDeps& deps, StepContext& ctx) {
  json res = Resources(ctx);
  if (!res.value("source_fenced", false)) {
    res["source_fenced"] = true;
    res["block_started_at_ms"] = deps.clock->NowMs();  // the pause's budget counts from here
    RETURN_IF_ERROR(SaveResources(ctx, res));
  }
  // Commits the fence after every write in flight; no later write can commit at the source.
  return Source(deps, ctx.migration())->db->Fence(ctx.migration().app_id);
}

}  // namespace regionmove::steps
