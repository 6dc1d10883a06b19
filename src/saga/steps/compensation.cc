// Compensation of SPEC §4: undo what the resources say was created, in an order that leaves
// the source writable only once everything else is back.
#include <filesystem>

#include "saga/steps/steps.h"

namespace regionmove::steps {

using nlohmann::json;

Status Compensate(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  json res = Resources(ctx);
  RegionPlane* src = Source(deps, m);
  RegionPlane* dst = Dest(deps, m);
  bool fast = IsFastReverse(m);
  if (dst && res.value("dest_runtime_written", false)) {
    RETURN_IF_ERROR(dst->runtime->DeleteAll(m.app_id, RuntimeStore::Which::kLive));
  }
  if (src && res.value("source_runtime_archived", false)) {
    RETURN_IF_ERROR(src->runtime->SetArchived(m.app_id, false));
  }
  if (dst && !fast && res.value("dest_created", false)) {
    RETURN_IF_ERROR(dst->db->Drop(m.app_id));
    RETURN_IF_ERROR(dst->blobs->DeleteNamespace(m.app_id));
  }
  if (fast && res.value("replication_stopped", false)) {
    // The forward move's replica goes back to following the source.
    RETURN_IF_ERROR(deps.plane->replicator()->Start(m.app_id, m.source_region, m.dest_region));
  }
  if (res.value("reserved", false)) {
    RETURN_IF_ERROR(deps.store->ReleaseReservation(m.id, m.dest_region));
  }
  std::error_code ec;
  std::filesystem::remove(StagingPath(deps, m), ec);
  if (src && res.value("source_fenced", false)) RETURN_IF_ERROR(src->db->Unfence(m.app_id));
  return Status::Ok();
}

}  // namespace regionmove::steps
