// dumping_data and restoring_data.
#include <future>

#include "saga/steps/steps.h"

namespace regionmove::steps {

using nlohmann::json;

namespace {

ProgressFn Reporter(StepContext& ctx) {
  return [&ctx](int64_t done, int64_t total) { return ctx.ReportProgress(done, total); };
}

// Row counts and checksums must match table by table, or the move stops before its flip.
// Counts what was compared into `rows` and `tables` (the app's own tables only).
Status CompareDigests(const Migration& m, const std::vector<TableDigest>& src,
                      const std::vector<TableDigest>& dst, int64_t* rows, int64_t* tables) {
  size_t n = std::max(src.size(), dst.size());
  for (size_t i = 0; i < n; ++i) {
    if (i >= src.size() || i >= dst.size() || src[i].table != dst[i].table) {
      return Corruption("verification failed: the table sets of " + m.source_region + " and " +
                        m.dest_region + " differ");
    }
    if (src[i].rows != dst[i].rows) {
      return Corruption("verification failed: table " + src[i].table + " has " +
                        std::to_string(src[i].rows) + " rows in " + m.source_region + " but " +
                        std::to_string(dst[i].rows) + " in " + m.dest_region);
    }
    if (src[i].checksum != dst[i].checksum) {
      return Corruption("verification failed: " + src[i].table + " differs between " +
                        m.source_region + " and " + m.dest_region);
    }
    if (src[i].app_table) {  // what the app holds, not the engine's own tables
      *rows += src[i].rows;
      ++*tables;
    }
  }
  return Status::Ok();
}

// Compares both sides' digests of `scope` (both fenced, dest caught up) and records what was
// compared in resources.verified (with the step's end), with `ms` (where the step's time went, if
// given) and the check's own milliseconds in it.
Status VerifyEqual(const StepDeps& deps, StepContext& ctx, const DigestScope& scope = {},
                   json ms = nullptr) {
  const Migration& m = ctx.migration();
  const int64_t started = deps.clock->NowMs();
  // Both sides at once: they are different databases (and usually different disks).
  auto src_future =
      std::async(std::launch::async, [&] { return Source(deps, m)->db->Digest(m.app_id, scope); });
  auto dst_result = Dest(deps, m)->db->Digest(m.app_id, scope);
  auto src_result = src_future.get();
  ASSIGN_OR_RETURN(auto src, std::move(src_result));
  ASSIGN_OR_RETURN(auto dst, std::move(dst_result));
  int64_t rows = 0, tables = 0;
  RETURN_IF_ERROR(CompareDigests(m, src, dst, &rows, &tables));
  json res = Resources(ctx);
  res["verified"] = {{"tables", tables}, {"rows", rows}};
  if (!scope.whole) {
    // The rows the change stream touched since the whole check at the copy's snapshot.
    res["verified"]["scope"] = "changed_rows";
    res["verified"]["changed_keys"] = scope.key_count();
    res["verified"]["whole_tables"] = scope.tables.size();
  }
  if (ms.is_object()) {
    ms["check"] = deps.clock->NowMs() - started;
    res["verified"]["ms"] = std::move(ms);
  }
  KeepResources(ctx, res);
  return Status::Ok();
}

}  // namespace

Status DumpData(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  if (IsStreamed(m)) {
    // No copy: wait until the replica has applied every change of the (fenced) primary.
    ASSIGN_OR_RETURN(auto lag,
                     deps.plane->replicator()->Pump(m.app_id, m.source_region, m.dest_region));
    if (!lag.caught_up()) {
      return Unavailable("replica still behind by " + std::to_string(lag.bytes) + " bytes");
    }
    return ctx.ReportProgress(lag.primary_position, lag.primary_position);
  }
  json res = Resources(ctx);
  if (res.contains("copy")) return Status::Ok();  // done before a crash
  // Compensation and the last step remove the staged files by the migration's id (RemoveStaged):
  // nothing needs recording before the export.
  res["staging"] = StagingPath(deps, m);
  ASSIGN_OR_RETURN(json state,
                   Source(deps, m)->db->ExportCopy(m.app_id, StagingPath(deps, m), Reporter(ctx)));
  res["copy"] = std::move(state);
  KeepResources(ctx, res);
  return Status::Ok();
}

Status RestoreData(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  json res = Resources(ctx);
  if (IsStreamed(m)) {
    Replicator* replicator = deps.plane->replicator();
    // An online move's copy was checked whole at its snapshot: what the stream changed since is
    // what can differ (read before Stop, which forgets it; after a crash past Stop, whole).
    DigestScope scope;
    const int64_t t0 = deps.clock->NowMs();
    if (!res.value("replication_stopped", false)) {
      RETURN_IF_ERROR(replicator->SyncRest(m.app_id, m.source_region, m.dest_region));
      if (res.value("copy_verified", false)) {
        ASSIGN_OR_RETURN(scope, replicator->Changed(m.app_id, m.source_region, m.dest_region));
      }
    }
    const int64_t t1 = deps.clock->NowMs();
    res["replication_stopped"] = true;
    RETURN_IF_ERROR(SaveResources(ctx, res));
    RETURN_IF_ERROR(replicator->Stop(m.app_id, m.source_region, m.dest_region));
    // Where this step's part of the pause went: reading the changed keys (with the sequences),
    // stopping the replication, and (added by the check) the check itself.
    return VerifyEqual(deps, ctx, scope,
                       json{{"changed", t1 - t0}, {"stop", deps.clock->NowMs() - t1}});
  }
  if (!res.contains("copy")) return Permanent("no database copy recorded for this migration");
  RETURN_IF_ERROR(Dest(deps, m)->db->ImportCopy(m.app_id, m.source_region, res["copy"],
                                                Reporter(ctx), ctx.epoch()));
  RETURN_IF_ERROR(deps.Fault("restoring_data.before_verify"));
  return VerifyEqual(deps, ctx);
}

std::optional<double> PredictCatchUpSeconds(int64_t earlier_replica, int64_t earlier_ms,
                                            int64_t replica, int64_t primary, int64_t now_ms) {
  if (replica >= primary) return 0.0;
  int64_t applied = replica - earlier_replica;
  if (applied <= 0 || now_ms <= earlier_ms) return std::nullopt;
  double rate = static_cast<double>(applied) * 1000.0 / static_cast<double>(now_ms - earlier_ms);
  return static_cast<double>(primary - replica) / rate;
}

// The lag gate's patience: a Pump that caught up within kPromptCatchUpMs lets the pause start;
// after kGateTries slower ones, a catch-up predicted within saga.max_block_seconds will do.
constexpr int64_t kPromptCatchUpMs = 150;
constexpr int kGateTries = 4;

Status Sync(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  RegionPlane* src = Source(deps, m);
  RegionPlane* dst = Dest(deps, m);
  Replicator* replicator = deps.plane->replicator();
  json res = Resources(ctx);
  if (!res.value("synced", false)) {
    // Recorded first: compensation stops this replication and deletes what is staged. A crash
    // before "synced" starts the copy over (the engine drops what the last try made).
    res["staging"] = StagingPath(deps, m);
    res["dest_replicating"] = true;
    res["copies"] = res.value("copies", 0) + 1;  // how often the bulk copy began
    RETURN_IF_ERROR(SaveResources(ctx, res));
    Status s = replicator->StartFromSnapshot(
        m.app_id, m.source_region, m.dest_region, [&](const json& at) -> Status {
          ASSIGN_OR_RETURN(json state,
                           src->db->ExportCopy(m.app_id, StagingPath(deps, m), Reporter(ctx), at));
          RETURN_IF_ERROR(deps.Fault("syncing.during_copy"));
          RETURN_IF_ERROR(
              dst->db->ImportCopy(m.app_id, m.source_region, state, Reporter(ctx), ctx.epoch()));
          // The whole check, once, while writes continue: the copy equals the source as of the
          // snapshot (before dest applies any change). The pause then checks what changed since.
          if (!state.contains("digest")) return Status::Ok();
          ASSIGN_OR_RETURN(auto src_digest, DigestFromJson(state["digest"]));
          ASSIGN_OR_RETURN(auto dst_digest, dst->db->Digest(m.app_id));
          int64_t rows = 0, tables = 0;
          RETURN_IF_ERROR(CompareDigests(m, src_digest, dst_digest, &rows, &tables));
          res["copy_verified"] = true;
          res["verified_at_copy"] = {{"tables", tables}, {"rows", rows}};
          return Status::Ok();
        });
    RemoveStaged(deps, m);
    RETURN_IF_ERROR(s);
    res["synced"] = true;
    RETURN_IF_ERROR(SaveResources(ctx, res));
    RETURN_IF_ERROR(deps.Fault("syncing.after_copy"));
  }
  // The blobs while writes continue: copying_blobs, under the block, then copies only what
  // changed since (it skips a blob dest already holds with the same SHA-256).
  if (!res.value("blobs_precopied", false)) {
    RETURN_IF_ERROR(CopyBlobs(deps, ctx));
    res = Resources(ctx);
    for (const char* key : {"blob_cursor", "blob_bytes", "blobs_done"}) res.erase(key);
    res["blobs_precopied"] = true;
    RETURN_IF_ERROR(SaveResources(ctx, res));
  }
  // The lag gate: the block starts once dest has caught up with the source as of a moment ago,
  // so that what is left for the block is what commits meanwhile.
  int64_t behind = 0;
  std::optional<double> predicted;
  int64_t sampled_ms = 0, sampled_position = -1;
  const double max_block = static_cast<double>(deps.config->max_block_seconds);
  for (int i = 0; i < 12; ++i) {
    const int64_t asked = deps.clock->NowMs();
    ASSIGN_OR_RETURN(ReplicationLag lag,
                     replicator->Pump(m.app_id, m.source_region, m.dest_region));
    int64_t now = deps.clock->NowMs();
    // A replica that reached the primary's position of this call at once is close behind the
    // head: the pause's catch-up will be short. One that needed long to get there is about as
    // far behind again by now (the writes went on), so the gate asks again, a few times, before
    // it settles for a catch-up predicted to fit.
    const bool settled = now - asked <= kPromptCatchUpMs || i >= kGateTries;
    if (lag.caught_up()) {
      predicted = 0.0;
    } else if (sampled_position >= 0) {
      predicted = PredictCatchUpSeconds(sampled_position, sampled_ms, lag.replica_position,
                                        lag.primary_position, now);
    }
    sampled_ms = now;
    sampled_position = lag.replica_position;
    res["sync_lag"] = {{"bytes", lag.bytes},
                       {"seconds", lag.seconds < 0 ? json(nullptr) : json(lag.seconds)},
                       {"predicted_block_seconds", predicted ? json(*predicted) : json(nullptr)}};
    RETURN_IF_ERROR(SaveResources(ctx, res));
    RETURN_IF_ERROR(ctx.ReportProgress(lag.replica_position, lag.primary_position));
    // A fault here stands for a replica that the writes keep ahead of (a write storm).
    bool held_back = !deps.Fault("syncing.lag_gate").ok();
    // The pause may start when dest has caught up, or when what is left would apply within
    // saga.max_block_seconds at the measured rate and the oldest pending change is younger.
    bool fits = predicted && *predicted <= max_block && lag.seconds <= max_block;
    if ((lag.caught_up() || fits) && settled && !held_back) return Status::Ok();
    behind = std::max<int64_t>(lag.bytes, held_back ? 1 : 0);
    RETURN_IF_ERROR(ctx.Checkpoint());
  }
  // Not a failure: the move keeps syncing (without using attempts) and says why.
  return Status(StatusCode::kUnavailable,
                "waiting to pause writes: dest is " + std::to_string(behind) +
                    " bytes behind the source (writes are arriving faster than they apply; " +
                    (predicted ? "the pause would need about " +
                                     std::to_string(static_cast<int64_t>(*predicted + 0.5)) + " s"
                               : std::string("no apply rate measured yet")) +
                    ", at most " + std::to_string(deps.config->max_block_seconds) + " s allowed)",
                "not_yet");
}

}  // namespace regionmove::steps
