// reserving_dest and blocking_writes.
#include "saga/steps/steps.h"

namespace regionmove::steps {

using nlohmann::json;

namespace {

Status CheckCapacity(const StepDeps& deps, const Migration& m, int64_t need) {
  RegionPlane* dest = Dest(deps, m);
  ASSIGN_OR_RETURN(auto apps, deps.store->ListApps(""));
  ASSIGN_OR_RETURN(auto reservations, deps.store->ListReservations(m.dest_region));
  int64_t count = 1, bytes = need;
  for (const auto& a : apps) {
    if (a.region == m.dest_region && a.id != m.app_id) {
      ++count;
      bytes += AppBytes(dest, a.id);
    }
  }
  for (const auto& r : reservations) {
    if (r.migration_id == m.id || r.app_id == m.app_id) continue;  // ours, or replaced below
    ++count;
    bytes += r.bytes;
  }
  if (count > dest->config.max_apps || bytes > dest->config.max_bytes) {
    return Status(StatusCode::kPermanent,
                  "region " + m.dest_region + " has no capacity left for this app",
                  "insufficient_capacity");
  }
  return Status::Ok();
}

}  // namespace

Status ReserveDest(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  json res = Resources(ctx);
  RegionPlane* dest = Dest(deps, m);
  if (!res.value("reserved", false)) {
    int64_t need = AppBytes(Source(deps, m), m.app_id);
    RETURN_IF_ERROR(CheckCapacity(deps, m, need));
    // Made, then recorded: Reserve is idempotent, so a crash in between repeats it on the
    // retry instead of skipping it (compensation releases it either way).
    RETURN_IF_ERROR(
        deps.store->Reserve(Reservation{m.id, m.dest_region, m.app_id, need, deps.clock->NowMs()}));
    res["reserved"] = true;
    RETURN_IF_ERROR(SaveResources(ctx, res));
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
  RETURN_IF_ERROR(dest->db->Drop(m.app_id));
  RETURN_IF_ERROR(dest->blobs->DeleteNamespace(m.app_id));
  RETURN_IF_ERROR(dest->runtime->DeleteAll(m.app_id, RuntimeStore::Which::kAll));
  RETURN_IF_ERROR(dest->db->Create(m.app_id));
  return dest->blobs->CreateNamespace(m.app_id);
}

Status BlockWrites(const StepDeps& deps, StepContext& ctx) {
  json res = Resources(ctx);
  if (!res.value("source_fenced", false)) {
    res["source_fenced"] = true;
    RETURN_IF_ERROR(SaveResources(ctx, res));
  }
  // Commits the fence after every write in flight; no later write can commit at the source.
  return Source(deps, ctx.migration())->db->Fence(ctx.migration().app_id);
}

}  // namespace regionmove::steps
