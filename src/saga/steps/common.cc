#include <filesystem>

#include "common/json_limits.h"
#include "saga/steps/steps.h"

namespace regionmove {
namespace steps {

using nlohmann::json;

json Resources(StepContext& ctx) {
  json j = json::parse(ctx.migration().resources, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

Status SaveResources(StepContext& ctx, const json& res) {
  KeepResources(ctx, res);
  return ctx.SaveResources();
}

void KeepResources(StepContext& ctx, const json& res) { ctx.migration().resources = DumpJson(res); }

RegionPlane* Source(const StepDeps& deps, const Migration& m) {
  return deps.plane->Region(m.source_region);
}
RegionPlane* Dest(const StepDeps& deps, const Migration& m) {
  return deps.plane->Region(m.dest_region);
}

bool IsFastReverse(const Migration& m) { return m.kind == "reverse" && m.reverse_path == "fast"; }

bool IsStreamed(const Migration& m) { return IsFastReverse(m) || m.strategy == "online"; }

std::string StagingPath(const StepDeps& deps, const Migration& m) {
  return deps.plane->staging_dir() + "/" + m.id;
}

void RemoveStaged(const StepDeps& deps, const Migration& m) {
  std::error_code ec;
  const std::string prefix = m.id + ".";
  for (const auto& e : std::filesystem::directory_iterator(deps.plane->staging_dir(), ec)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove(e.path(), ec);
  }
}

void Note(const StepDeps& deps, const Migration& m, const std::string& message) {
  // History only: never fails a step.
  (void)deps.store->AppendEvent(InstantEvent(m, "note", message, deps.clock->NowMs()));
}

Status Validate(const StepDeps& deps, StepContext& ctx) {
  const Migration& m = ctx.migration();
  if (!Source(deps, m)) return Permanent("source region " + m.source_region + " is not configured");
  RegionPlane* dest = Dest(deps, m);
  if (!dest) return Permanent("destination region " + m.dest_region + " is not configured");
  if (dest->config.status == "offline") {
    return Permanent("destination region " + m.dest_region + " is offline");
  }
  ASSIGN_OR_RETURN(App app, deps.store->GetApp(m.app_id));
  if (app.region != m.source_region) {
    return Permanent("app " + m.app_id + " is served from " + app.region + ", not " +
                     m.source_region);
  }
  return Status::Ok();
}

}  // namespace steps

Result<RegionUsage> UsageWithout(const StepDeps& deps, const std::string& region,
                                 const std::string& app_id) {
  RegionUsage u;
  RegionPlane* plane = deps.plane->Region(region);
  if (!plane) return InvalidArgument("unknown region '" + region + "'", "invalid_region");
  ASSIGN_OR_RETURN(auto apps, deps.store->ListApps(""));
  std::vector<std::string> ids;
  for (const auto& a : apps) {
    if (a.region == region && a.id != app_id) ids.push_back(a.id);
  }
  u.apps = static_cast<int64_t>(ids.size());
  for (const auto& [id, bytes] : AppsBytes(plane, ids)) u.bytes += bytes;
  return u;
}

void RegisterMoveSteps(StepRegistry* registry, const StepDeps& deps) {
  using Fn = Status (*)(const StepDeps&, StepContext&);
  // Every step has fault points "<step>.before" and "<step>.after" (after its side effects,
  // before the engine records the transition): the crash matrix kills the process there.
  auto bind = [deps](Fn fn) {
    return [deps, fn](StepContext& ctx) {
      const std::string name = ctx.migration().compensation != Compensation::kNone
                                   ? std::string("compensation")
                                   : std::string(StepName(ctx.migration().current_step));
      RETURN_IF_ERROR(deps.Fault(name + ".before"));
      Status s = fn(deps, ctx);
      if (s.ok()) RETURN_IF_ERROR(deps.Fault(name + ".after"));
      return s;
    };
  };
  registry->Register(Step::kRequested, bind(steps::Validate));
  registry->Register(Step::kReservingDest, bind(steps::ReserveDest));
  registry->Register(Step::kSyncing, bind(steps::Sync));
  registry->Register(Step::kBlockingWrites, bind(steps::BlockWrites));
  // The steps of the pause before the flip check the pause's budget first (online moves).
  auto budgeted = [deps, bind](Fn fn) {
    return [deps, step = bind(fn)](StepContext& ctx) -> Status {
      RETURN_IF_ERROR(steps::CheckBlockBudget(deps, ctx));
      return step(ctx);
    };
  };
  registry->Register(Step::kDumpingData, budgeted(steps::DumpData));
  registry->Register(Step::kRestoringData, budgeted(steps::RestoreData));
  registry->Register(Step::kCopyingBlobs, budgeted(steps::CopyBlobs));
  registry->Register(Step::kCopyingRuntime, budgeted(steps::CopyRuntime));
  registry->Register(Step::kFlippingRouting, budgeted(steps::CheckBeforeFlip));
  registry->Register(Step::kSettingUpReverseReplication, bind(steps::SetUpReverseReplication));
  registry->Register(Step::kUnblockingWrites, bind(steps::UnblockWrites));
  registry->RegisterCompensation(bind(steps::Compensate));
}

}  // namespace regionmove
