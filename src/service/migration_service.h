#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/ids.h"
#include "saga/steps/steps.h"

namespace regionmove {

// One condition of a move; `code` is the ineligible reason_code when it fails.
struct EligibilityCheck {
  std::string name;  // what the check asks, named for its answer when it passes
  std::string code;  // the 409 ineligible reason_code when it fails
  bool ok = false;
  std::string message;
};

// One retained source replica as the API lists it.
struct ReplicaInfo {
  Migration migration;
  int64_t size_bytes = 0;
  int64_t lag_bytes = 0;
  double lag_seconds = 0;    // -1: the engine cannot tell
  int64_t lag_changes = -1;  // -1: the engine does not count changes
  int64_t apply_errors = 0;  // changes the replica failed to apply (a broken replica)
  std::string reason;        // why it diverged (state diverged, or about to be)
  double estimated_monthly_cost_usd = 0;
};

// The use cases of moves (SPEC §2–§6): start, plan, inspect, abort, reverse, replicas and
// teardown, and the write guard. `owner` scopes every call to one user's apps (another user's
// app, migration or replica is NotFound); an empty owner means an admin or internal caller.
// Thread-safe.
class MigrationService {
 public:
  MigrationService(const StepDeps& deps, Rng* rng) : deps_(deps), rng_(rng) {}

  // Queues a move. InvalidArgument("invalid_region" | "invalid_strategy"), NotFound,
  // Conflict("ineligible") with detail same_region | region_not_accepting |
  // migration_in_flight | app_not_ready | insufficient_capacity.
  Result<Migration> Move(const std::string& owner, const std::string& app_id,
                         const std::string& dest_region, const std::string& strategy);
  // The plan of a move without starting it: sizes, estimates and eligibility checks.
  Result<nlohmann::json> PlanMove(const std::string& owner, const std::string& app_id,
                                  const std::string& dest_region, const std::string& strategy);

  Result<Migration> Get(const std::string& owner, const std::string& app_id,
                        const std::string& migration_id);
  Result<std::vector<Migration>> List(const std::string& owner, const std::string& app_id);
  Result<std::optional<Migration>> Active(const std::string& owner, const std::string& app_id);
  Result<std::vector<MigrationEvent>> Events(const std::string& owner, const std::string& app_id,
                                             const std::string& migration_id);
  // Conflict("cutover_passed" | "not_active").
  Result<Migration> Abort(const std::string& owner, const std::string& app_id,
                          const std::string& migration_id);
  // Conflict("not_reversible"). The new migration says its path: fast or slow.
  Result<Migration> Reverse(const std::string& owner, const std::string& app_id,
                            const std::string& migration_id);

  Result<std::vector<ReplicaInfo>> ListReplicas(const std::string& owner);
  // Conflict("not_replicating").
  Status Teardown(const std::string& owner, const std::string& migration_id);
  // Retries destination cleanups that compensations left as debris.
  Status RetryDebris();
  // Migrations whose destination still holds debris (admins: every owner).
  Result<std::vector<Migration>> ListDebris(const std::string& owner);
  // Finishes teardowns a crash interrupted.
  Status ResumeTeardowns();
  // Keeps every replicating replica going (the background loop); with `wait`, brings each up to
  // its primary's position as of the call (Replicator::Pump). A replica that has diverged is
  // marked so (event replica_diverged) and its replication stopped.
  Status PumpReplicas(bool wait = false);
  // Tears down replicas older than the configured retention (0 keeps them).
  Status EnforceRetention();

  // The migration that blocks the app's writes now, if any (the guard of SPEC §6).
  Result<std::optional<Migration>> WriteBlocker(const std::string& app_id);
  // Seconds a blocked writer should wait: an estimate from progress, at least 1; 60 unknown.
  int64_t RetryAfterSeconds(const Migration& m) const;
  // Estimated seconds until the migration ends; nullopt while there is no progress to go by.
  std::optional<int64_t> EtaSeconds(const Migration& m) const;
  // A completed migration that is the app's latest and has no active successor.
  bool IsReversible(const Migration& m);

  // Owner check for an app: NotFound when it is not `owner`'s.
  Result<App> OwnedApp(const std::string& owner, const std::string& app_id);
  Result<Migration> OwnedMigration(const std::string& owner, const std::string& migration_id);

 private:
  Status CheckEligible(const App& app, const std::string& dest_region);
  // Every condition of a move, passed or not. InvalidArgument("invalid_region").
  Result<std::vector<EligibilityCheck>> EligibilityChecks(const App& app,
                                                          const std::string& dest_region);
  // A new queued migration of the app from `source` to `dest`.
  Migration Draft(const std::string& app_id, const std::string& owner, const std::string& source,
                  const std::string& dest);
  // Replica of `m`: replicating -> diverged with the reason, then its replication stopped.
  Status MarkDiverged(const Migration& m, const std::string& why);

  StepDeps deps_;
  Rng* rng_;
};

}  // namespace regionmove
