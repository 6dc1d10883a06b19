#pragma once

#include <string>

#include "service/migration_service.h"

namespace regionmove {

// Use cases of apps and of the app data API: creating apps and finding the region ports that
// serve an app for a read or a write. Every write passes the migration guard (SPEC §6) first.
// Thread-safe.
class AppService {
 public:
  AppService(const StepDeps& deps, MigrationService* migrations, Rng* rng)
      : deps_(deps), migrations_(migrations), rng_(rng) {}

  // InvalidArgument("invalid_region" | "invalid_request"), Conflict("subdomain_taken").
  Result<App> CreateApp(const std::string& owner, const std::string& name,
                        const std::string& region, const std::string& subdomain);
  // The ports of the region serving the app now. NotFound for another user's app.
  Result<RegionPlane*> ForRead(const std::string& owner, const std::string& app_id);
  // As ForRead, but Unavailable("app_migrating") while a migration blocks the app's writes.
  Result<RegionPlane*> ForWrite(const std::string& owner, const std::string& app_id);

  // Custom domains are both runtime rows and routes: Conflict("domain_taken").
  Status PutDomain(const std::string& owner, const std::string& app_id, const std::string& host);
  Status DeleteDomain(const std::string& owner, const std::string& app_id, const std::string& host);

  // Bytes the app holds in the region serving it.
  int64_t SizeBytes(const App& app);
  // SizeBytes of each of `apps`, by app id: one question per store of each region involved
  // rather than one per app.
  std::map<std::string, int64_t> SizesBytes(const std::vector<App>& apps);

 private:
  StepDeps deps_;
  MigrationService* migrations_;
  Rng* rng_;
};

// Lowercase letters, digits and '-', 1..63, not starting or ending with '-'.
bool IsValidSubdomain(std::string_view s);
// A custom domain of an app (SPEC §7): a lowercase DNS name of LDH labels (punycode for
// international names), at least two labels, at most 253 bytes, no trailing dot, not an IP
// address, and not `apps_domain` or under it. InvalidArgument("invalid_domain") saying why.
Status ValidateCustomDomain(std::string_view host, std::string_view apps_domain);

}  // namespace regionmove
