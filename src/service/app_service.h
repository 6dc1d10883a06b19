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

 private:
  StepDeps deps_;
  MigrationService* migrations_;
  Rng* rng_;
};

// Lowercase letters, digits and '-', 1..63, not starting or ending with '-'.
bool IsValidSubdomain(std::string_view s);
// A DNS hostname of labels like IsValidSubdomain, at least two labels, at most 253 bytes.
bool IsValidHostname(std::string_view s);

}  // namespace regionmove
