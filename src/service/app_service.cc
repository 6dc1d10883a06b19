#include "service/app_service.h"

namespace regionmove {

bool IsValidSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool IsValidHostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  int labels = 0;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('.', start);
    if (end == std::string_view::npos) end = s.size();
    if (!IsValidSubdomain(s.substr(start, end - start))) return false;
    ++labels;
    start = end + 1;
  }
  return labels >= 2;
}

Result<App> AppService::CreateApp(const std::string& owner, const std::string& name,
                                  const std::string& region, const std::string& subdomain) {
  if (name.empty() || name.size() > 100) {
    return InvalidArgument("field 'name' must be 1 to 100 characters");
  }
  RegionPlane* plane = deps_.plane->Region(region);
  if (!plane) return InvalidArgument("unknown region '" + region + "'", "invalid_region");
  if (plane->config.status == "offline") {
    return InvalidArgument("region " + region + " is offline", "invalid_region");
  }
  App app;
  app.id = NewAppId(*rng_);
  app.name = name;
  app.owner = owner;
  app.region = region;
  app.created_at_ms = deps_.clock->NowMs();
  app.subdomain = subdomain.empty() ? app.id.substr(4) : subdomain;
  if (!IsValidSubdomain(app.subdomain)) {
    return InvalidArgument("field 'subdomain' must be lowercase letters, digits and '-' (1-63)");
  }
  RETURN_IF_ERROR(plane->db->Create(app.id));
  RETURN_IF_ERROR(plane->blobs->CreateNamespace(app.id));
  Status s = deps_.store->CreateApp(app);
  if (!s.ok()) {
    (void)plane->db->Drop(app.id);
    (void)plane->blobs->DeleteNamespace(app.id);
    return s;
  }
  return app;
}

Result<RegionPlane*> AppService::ForRead(const std::string& owner, const std::string& app_id) {
  ASSIGN_OR_RETURN(App app, migrations_->OwnedApp(owner, app_id));
  RegionPlane* plane = deps_.plane->Region(app.region);
  if (!plane) return Permanent("app " + app_id + " is in unknown region " + app.region);
  return plane;
}

Result<RegionPlane*> AppService::ForWrite(const std::string& owner, const std::string& app_id) {
  ASSIGN_OR_RETURN(RegionPlane * plane, ForRead(owner, app_id));
  ASSIGN_OR_RETURN(auto blocker, migrations_->WriteBlocker(app_id));
  if (blocker) {
    return Status(StatusCode::kUnavailable,
                  "app " + app_id + " is moving to " + blocker->dest_region +
                      "; writes are paused during " + std::string(StepName(blocker->current_step)),
                  "app_migrating", blocker->id);
  }
  return plane;
}

Status AppService::PutDomain(const std::string& owner, const std::string& app_id,
                             const std::string& host) {
  if (!IsValidHostname(host)) return InvalidArgument("'" + host + "' is not a valid hostname");
  ASSIGN_OR_RETURN(RegionPlane * plane, ForWrite(owner, app_id));
  return plane->db->WithWriteFence(app_id, [&]() -> Status {
    RETURN_IF_ERROR(deps_.store->AddRoute(Route{host, app_id, "", true}));
    return plane->runtime->PutDomain(app_id, host);
  });
}

Status AppService::DeleteDomain(const std::string& owner, const std::string& app_id,
                                const std::string& host) {
  ASSIGN_OR_RETURN(RegionPlane * plane, ForWrite(owner, app_id));
  return plane->db->WithWriteFence(app_id, [&]() -> Status {
    RETURN_IF_ERROR(plane->runtime->Delete(app_id, "domains", host));
    Status s = deps_.store->RemoveRoute(host);
    return s.code() == StatusCode::kNotFound ? Status::Ok() : s;
  });
}

int64_t AppService::SizeBytes(const App& app) {
  RegionPlane* plane = deps_.plane->Region(app.region);
  return plane ? AppBytes(plane, app.id) : 0;
}

}  // namespace regionmove
