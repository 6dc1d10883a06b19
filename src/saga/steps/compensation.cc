// Compensation of SPEC §4. Two phases: first give the app back to its source (runtime rows
// unarchived, the fence lifted), so that nothing at the destination can keep the app blocked;
// then clean the destination. A destination that will not be cleaned is retried with the
// step's attempts and then recorded as debris in the migration's resources and history (the
// app is back to normal either way).
#include <filesystem>

#include "common/json_limits.h"
#include "saga/steps/steps.h"

namespace regionmove::steps {

using nlohmann::json;

namespace {

Status GiveBackToSource(const StepDeps& deps, const Migration& m, const json& res, int64_t token) {
  RegionPlane* src = Source(deps, m);
  if (src && res.value("source_runtime_archived", false)) {
    RETURN_IF_ERROR(src->runtime->SetArchived(m.app_id, false));
  }
  if (IsFastReverse(m) && res.value("replication_stopped", false)) {
    // The forward move's replica goes back to following the source.
    RETURN_IF_ERROR(deps.plane->replicator()->Start(m.app_id, m.source_region, m.dest_region));
  }
  if (src && res.value("source_fenced", false)) {
    RETURN_IF_ERROR(src->db->Unfence(m.app_id, token));
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> CleanDest(const StepDeps& deps, const Migration& m, const json& res,
                                   int64_t token, bool keep_reservation) {
  std::vector<std::string> failed;
  auto attempt = [&](const std::string& what, const Status& s) {
    if (!s.ok()) failed.push_back(what + ": " + s.message());
  };
  RegionPlane* dst = Dest(deps, m);
  bool fast = IsFastReverse(m);
  attempt("dest", deps.Fault("compensation.clean_dest"));
  if (dst && res.value("dest_runtime_written", false)) {
    attempt("dest runtime rows",
            dst->runtime->DeleteAll(m.app_id, RuntimeStore::Which::kLive, token));
  }
  if (dst && res.value("dest_replicating", false)) {
    // An online move's replication into dest (its slot on the source's cluster goes too).
    Status s = deps.plane->replicator()->Stop(m.app_id, m.source_region, m.dest_region);
    if (s.code() != StatusCode::kNotFound) attempt("replication to dest", s);
  }
  if (dst && !fast && res.value("dest_created", false)) {
    attempt("dest database", dst->db->Drop(m.app_id, token));
    attempt("dest blobs", dst->blobs->DeleteNamespace(m.app_id, token));
  }
  // Whether or not the reservation was recorded (reserving_dest records it with the dest
  // database's creation, after making it): releasing one that is not there changes nothing.
  if (!keep_reservation) {
    attempt("dest reservation", deps.store->ReleaseReservation(m.id, m.dest_region));
  }
  RemoveStaged(deps, m);
  return failed;
}

Status CheckBlockBudget(const StepDeps& deps, StepContext& ctx) {
  Migration& m = ctx.migration();
  if (m.strategy != "online") return Status::Ok();
  json res = Resources(ctx);
  int64_t started = res.value("block_started_at_ms", int64_t{0});
  int64_t budget_ms = deps.config->block_budget_seconds * 1000;
  if (started == 0 || deps.clock->NowMs() - started <= budget_ms) return Status::Ok();
  const std::string budget = std::to_string(deps.config->block_budget_seconds) + " s";
  int attempts = res.value("block_attempts", 0) + 1;
  if (attempts >= kMaxBlockAttempts) {
    return Status(StatusCode::kPermanent,
                  "the write pause passed its budget of " + budget + " " +
                      std::to_string(attempts) + " times; the app stays in " + m.source_region,
                  "block_budget_exhausted");
  }
  RETURN_IF_ERROR(GiveBackToSource(deps, m, res, ctx.epoch()));
  // The reservation stays for the next attempt.
  std::vector<std::string> failed = CleanDest(deps, m, res, ctx.epoch(), /*keep_reservation=*/true);
  if (!failed.empty()) return Unavailable("emptying the destination: " + failed.front());
  RegionPlane* dst = Dest(deps, m);
  RETURN_IF_ERROR(dst->db->Create(m.app_id));
  // Written by the engine with the return to syncing, in one transaction.
  m.resources = DumpJson(json{{"reserved", res.value("reserved", false)},
                              {"dest_created", true},
                              {"block_attempts", attempts}});
  return Status(StatusCode::kConflict,
                "the write pause passed its budget of " + budget +
                    " before the flip: writes resumed in " + m.source_region +
                    ", syncing again (pause " + std::to_string(attempts + 1) + " of " +
                    std::to_string(kMaxBlockAttempts) + ")",
                "block_budget");
}

Status RetryDebris(const StepDeps& deps) {
  ASSIGN_OR_RETURN(auto list, deps.store->ListMigrationsWithDebris());
  Status first;
  for (const auto& m : list) {
    json res = json::parse(m.resources, nullptr, false);
    if (!res.is_object()) continue;
    auto app = deps.store->GetApp(m.app_id);
    if (!app.ok()) continue;
    std::vector<std::string> failed;
    std::string outcome;
    if (app->region == m.dest_region) {
      outcome = "the app has since moved to " + m.dest_region + "; nothing of it is debris";
    } else {
      // The migration's last epoch as token: a later migration that has used the region since
      // refuses it (fenced), and then there is nothing left that is this migration's.
      failed = CleanDest(deps, m, res, m.epoch);
      bool superseded = false;
      for (const auto& f : failed) superseded |= f.find("fenced") != std::string::npos;
      if (superseded) {
        failed.clear();
        outcome = "a later migration has used " + m.dest_region + " since; debris dropped";
      } else if (failed.empty()) {
        outcome = "debris in " + m.dest_region + " removed";
      }
    }
    json next = res;
    if (failed.empty()) {
      next.erase("debris");
    } else {
      next["debris"] = failed;
    }
    Status s = deps.store->SetTerminalResources(m.id, m.resources, DumpJson(next));
    if (!s.ok() && first.ok()) first = s;
    if (s.ok() && !outcome.empty()) Note(deps, m, outcome);
  }
  return first;
}

Status Compensate(const StepDeps& deps, StepContext& ctx) {
  Migration& m = ctx.migration();
  json res = Resources(ctx);
  RETURN_IF_ERROR(GiveBackToSource(deps, m, res, ctx.epoch()));
  RETURN_IF_ERROR(deps.Fault("compensation.after_give_back"));
  std::vector<std::string> failed = CleanDest(deps, m, res, ctx.epoch());
  if (failed.empty()) return Status::Ok();
  std::string what;
  for (const auto& f : failed) what += (what.empty() ? "" : "; ") + f;
  if (m.attempt + 1 < deps.config->max_attempts) {
    return Unavailable("cleaning the destination: " + what);  // retried; the app is writable
  }
  json debris = json::array();
  for (const auto& f : failed) debris.push_back(f);
  res["debris"] = debris;
  RETURN_IF_ERROR(SaveResources(ctx, res));
  Note(deps, m,
       "the app is back in " + m.source_region + "; left in " + m.dest_region +
           " for an operator to remove: " + what);
  return Status::Ok();
}

}  // namespace regionmove::steps
