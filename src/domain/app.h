#pragma once

#include <cstdint>
#include <string>

namespace regionmove {

inline constexpr const char* kAppReady = "ready";
inline constexpr const char* kAppMigrating = "migrating";
// A move failed after its cutover: the app serves from dest but waits for an admin repair.
inline constexpr const char* kAppNeedsRepair = "needs_repair";

// A tenant app. Its data lives in exactly one region at a time: `region`.
struct App {
  std::string id;  // "app_" + 12 base32 chars
  std::string name;
  std::string owner;
  std::string subdomain;
  std::string region;
  std::string status = kAppReady;
  int64_t created_at_ms = 0;
  int64_t routing_version = 1;  // bumped on every flip
};

// A hostname that reaches an app: its subdomain or one of its custom domains.
struct Route {
  std::string host;
  std::string app_id;
  std::string region;
  bool custom = false;
};

struct User {
  std::string name;
  bool admin = false;
};

// Capacity held in a region for a migration (dest while moving, source while replicating).
struct Reservation {
  std::string migration_id;
  std::string region;
  std::string app_id;
  int64_t bytes = 0;
  int64_t created_at_ms = 0;
};

}  // namespace regionmove
