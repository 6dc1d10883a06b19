#include "service/app_service.h"

#include "common/text.h"

namespace regionmove {

bool IsValidSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

Status ValidateCustomDomain(std::string_view host, std::string_view apps_domain) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("'" + SanitizeUtf8(host) + "' is not a valid custom domain: " + why,
                           "invalid_domain");
  };
  if (host.empty()) return bad("it is empty");
  if (host.size() > 253) return bad("it is longer than 253 bytes");
  if (host.back() == '.') return bad("write it without the trailing dot");
  for (char c : host) {
    if (c >= 'A' && c <= 'Z') return bad("write it in lowercase");
    if (static_cast<unsigned char>(c) >= 0x80) {
      return bad("write an internationalised name in its punycode form (xn--...)");
    }
  }
  int labels = 0;
  std::string_view last;
  for (size_t start = 0; start <= host.size();) {
    size_t end = std::min(host.find('.', start), host.size());
    std::string_view label = host.substr(start, end - start);
    if (!IsValidSubdomain(label)) {
      return bad(
          "each label is 1 to 63 lowercase letters, digits or '-', not starting or "
          "ending with '-'");
    }
    // Labels with "--" in the third and fourth place are reserved for IDNA (xn--).
    if (label.size() >= 4 && label.substr(2, 2) == "--" && label.substr(0, 4) != "xn--") {
      return bad("'--' in the third and fourth place is reserved for punycode (xn--)");
    }
    last = label;
    ++labels;
    start = end + 1;
  }
  if (labels < 2) return bad("it needs at least two labels (shop.example.com)");
  if (last.find_first_not_of("0123456789") == std::string_view::npos) {
    return bad("an IP address is not a domain");
  }
  std::string suffix = "." + std::string(apps_domain);
  if (host == apps_domain ||
      (host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix)) {
    return bad("names under " + std::string(apps_domain) +
               " belong to the platform (an app's own one is its subdomain)");
  }
  return Status::Ok();
}

Result<App> AppService::CreateApp(const std::string& owner, const std::string& name,
                                  const std::string& region, const std::string& subdomain) {
  if (name.empty() || name.size() > 100) {
    return InvalidArgument("field 'name' must be 1 to 100 characters");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgument("field 'name' must not contain control characters");
    }
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
  RETURN_IF_ERROR(ValidateCustomDomain(host, deps_.config->apps_domain));
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

std::map<std::string, int64_t> AppService::SizesBytes(const std::vector<App>& apps) {
  std::map<std::string, std::vector<std::string>> by_region;
  for (const auto& a : apps) by_region[a.region].push_back(a.id);
  std::map<std::string, int64_t> out;
  for (const auto& [region, ids] : by_region) {
    RegionPlane* plane = deps_.plane->Region(region);
    if (!plane) continue;
    out.merge(AppsBytes(plane, ids));
  }
  return out;
}

}  // namespace regionmove
