#include "service/migration_service.h"

#include <algorithm>
#include <cmath>

#include "common/log.h"
#include "common/text.h"
#include "store/estimates.h"

namespace regionmove {

using nlohmann::json;

namespace {

Status Ineligible(const std::string& code, const std::string& message) {
  return Status(StatusCode::kConflict, message, "ineligible", code);
}

// The strategy a move runs: the one asked for, or the configured default when none is.
Result<std::string> ResolveStrategy(const std::string& strategy, const Config& config) {
  if (strategy.empty()) return config.default_strategy;
  if (strategy == "offline" || strategy == "online") return strategy;
  return InvalidArgument("unknown strategy '" + strategy + "' (offline or online)",
                         "invalid_strategy");
}

}  // namespace

Result<App> MigrationService::OwnedApp(const std::string& owner, const std::string& app_id) {
  if (!IsValidAppId(app_id)) return NotFound("app " + app_id + " not found");
  auto app = deps_.store->GetApp(app_id);
  if (!app.ok() || (!owner.empty() && app->owner != owner)) {
    return NotFound("app " + app_id + " not found");
  }
  return app;
}

Result<Migration> MigrationService::OwnedMigration(const std::string& owner,
                                                   const std::string& migration_id) {
  auto m = deps_.store->GetMigration(migration_id);
  if (!m.ok() || (!owner.empty() && m->owner != owner)) {
    return NotFound("migration " + migration_id + " not found");
  }
  return m;
}

Result<std::vector<EligibilityCheck>> MigrationService::EligibilityChecks(
    const App& app, const std::string& dest_region) {
  RegionPlane* dest = deps_.plane->Region(dest_region);
  if (!dest) {
    return InvalidArgument("unknown region '" + dest_region + "'", "invalid_region");
  }
  ASSIGN_OR_RETURN(auto active, deps_.store->GetActiveMigration(app.id));
  // Counted as reserving_dest counts it: the region's other apps and bytes, plus what other
  // moves have reserved there, plus this app.
  ASSIGN_OR_RETURN(RegionUsage used, UsageWithout(deps_, dest_region, app.id));
  ASSIGN_OR_RETURN(auto reservations, deps_.store->ListReservations(dest_region));
  int64_t apps_after = used.apps + 1, bytes_after = used.bytes;
  if (RegionPlane* src = deps_.plane->Region(app.region)) bytes_after += AppBytes(src, app.id);
  for (const auto& r : reservations) {
    if (r.app_id == app.id) continue;
    ++apps_after;
    bytes_after += r.bytes;
  }
  const RegionConfig& rc = dest->config;
  Status exchange = deps_.plane->CanExchange(app.region, dest_region);
  // What the destination lacks for a copy of the database (roles, extensions), when the two
  // engines can exchange it at all.
  std::string lacks;
  RegionPlane* src = deps_.plane->Region(app.region);
  if (exchange.ok() && src && app.region != dest_region) {
    auto missing = src->db->MissingForCopy(app.id, dest_region);
    if (!missing.ok()) {
      lacks = "cannot check what " + dest_region + " needs: " + missing.status().message();
    }
    for (const auto& m : missing.ok() ? *missing : std::vector<std::string>{}) {
      lacks += (lacks.empty() ? "" : ", ") + m;
    }
    if (missing.ok() && !lacks.empty()) lacks = dest_region + " lacks " + lacks;
  }
  bool fits = apps_after <= rc.max_apps && bytes_after <= rc.max_bytes;
  return std::vector<EligibilityCheck>{
      {"dest_differs_from_source", "same_region", app.region != dest_region,
       app.region == dest_region ? "app " + app.id + " is already in " + dest_region
                                 : "the app is in " + app.region},
      {"dest_accepts_moves", "region_not_accepting", rc.status == "available",
       "region " + dest_region + " is " + rc.status +
           (rc.status == "available" ? "" : " and does not accept moves")},
      {"no_migration_in_flight", "migration_in_flight", !active,
       active ? "app " + app.id + " already has migration " + active->id + " in flight"
              : "no migration in flight"},
      {"engines_compatible", "engine_mismatch",
       exchange.ok() || exchange.reason() != "engine_mismatch",
       exchange.ok() ? "both regions run the " + rc.database.engine + " database engine"
                     : exchange.message()},
      {"dest_has_prerequisites", "missing_prerequisites", lacks.empty(),
       lacks.empty() ? "the destination has what the app's database needs" : lacks},
      {"app_ready", "app_not_ready", app.status == kAppReady,
       "app " + app.id + " is " + app.status},
      {"dest_has_capacity", "insufficient_capacity", fits,
       "with this app, region " + dest_region + " would hold " + std::to_string(apps_after) +
           " of at most " + std::to_string(rc.max_apps) + " apps and " + HumanBytes(bytes_after) +
           " of at most " + HumanBytes(rc.max_bytes)},
  };
}

Status MigrationService::CheckEligible(const App& app, const std::string& dest_region) {
  ASSIGN_OR_RETURN(auto checks, EligibilityChecks(app, dest_region));
  for (const auto& c : checks) {
    if (!c.ok) return Ineligible(c.code, c.message);
  }
  return Status::Ok();
}

Migration MigrationService::Draft(const std::string& app_id, const std::string& owner,
                                  const std::string& source, const std::string& dest) {
  Migration m;
  m.id = NewUuidV4(*rng_);
  m.app_id = app_id;
  m.owner = owner;
  m.strategy = "offline";  // a move sets its own; a reverse walks the offline plan
  m.source_region = source;
  m.dest_region = dest;
  m.initiated_at_ms = m.next_attempt_at_ms = m.updated_at_ms = deps_.clock->NowMs();
  return m;
}

Result<Migration> MigrationService::Move(const std::string& owner, const std::string& app_id,
                                         const std::string& dest_region,
                                         const std::string& strategy) {
  ASSIGN_OR_RETURN(std::string chosen, ResolveStrategy(strategy, *deps_.config));
  ASSIGN_OR_RETURN(App app, OwnedApp(owner, app_id));
  RETURN_IF_ERROR(CheckEligible(app, dest_region));
  Migration m = Draft(app.id, app.owner, app.region, dest_region);
  m.strategy = chosen;
  Status s = deps_.store->CreateMigration(m);
  if (s.reason() == "migration_in_flight" || s.reason() == "app_busy") {
    return Ineligible("migration_in_flight", s.message());
  }
  RETURN_IF_ERROR(s);
  return m;
}

Result<json> MigrationService::PlanMove(const std::string& owner, const std::string& app_id,
                                        const std::string& dest_region,
                                        const std::string& strategy) {
  ASSIGN_OR_RETURN(std::string chosen, ResolveStrategy(strategy, *deps_.config));
  ASSIGN_OR_RETURN(App app, OwnedApp(owner, app_id));
  RegionPlane* src = deps_.plane->Region(app.region);
  int64_t db = 0, blobs = 0;
  if (src) {
    auto d = src->db->SizeBytes(app.id);
    auto b = src->blobs->SizeBytes(app.id);
    db = d.ok() ? *d : 0;
    blobs = b.ok() ? *b : 0;
  }
  ASSIGN_OR_RETURN(auto results, EligibilityChecks(app, dest_region));
  bool eligible = true;
  json checks = json::array();
  for (const auto& c : results) {
    eligible = eligible && c.ok;
    checks.push_back({{"name", c.name},
                      {"ok", c.ok},
                      {"reason_code", c.ok ? json() : json(c.code)},
                      {"message", c.message}});
  }
  // Each strategy's pause and duration for this app's bytes, at the rates that the last moves
  // of that strategy measured (any process's: they are in the control store), or at assumed
  // ones until a move has completed.
  const double bytes = static_cast<double>(db + blobs);
  auto estimate = [&](const std::string& strategy) -> Result<json> {
    ASSIGN_OR_RETURN(MoveEstimate e,
                     EstimateMove(*deps_.store, strategy, bytes, deps_.config->max_block_seconds));
    auto tenths = [](double seconds) { return std::round(seconds * 10) / 10; };
    return json{
        {"estimated_write_block_seconds", tenths(e.write_block_seconds)},
        {"estimated_duration_seconds", tenths(e.duration_seconds)},
        {"copy_bytes_per_second", e.bytes_per_second},
        {"rates", e.measured_moves > 0
                      ? "measured by the last " + std::to_string(e.measured_moves) + " " +
                            strategy + " move(s)"
                      : std::string("assumed: no " + strategy + " move has completed yet")}};
  };
  ASSIGN_OR_RETURN(json offline, estimate("offline"));
  ASSIGN_OR_RETURN(json online, estimate("online"));
  json strategies = {{"offline", offline}, {"online", online}};
  const json& mine = strategies[chosen];
  return json{{"dry_run", true},
              {"app_id", app.id},
              {"source_region", app.region},
              {"dest_region", dest_region},
              {"strategy", chosen},
              {"eligible", eligible},
              {"sizes", {{"database_bytes", db}, {"blob_bytes", blobs}}},
              {"estimated_duration_seconds", mine["estimated_duration_seconds"]},
              {"estimated_write_block_seconds", mine["estimated_write_block_seconds"]},
              {"strategies", strategies},
              // A pause of over a minute is worth avoiding: the online strategy keeps it short.
              {"recommended_strategy",
               strategies["offline"]["estimated_write_block_seconds"].get<double>() > 60
                   ? "online"
                   : deps_.config->default_strategy},
              {"steps", Plan::For(chosen).size()},
              {"checks", checks}};
}

Result<Migration> MigrationService::Get(const std::string& owner, const std::string& app_id,
                                        const std::string& migration_id) {
  ASSIGN_OR_RETURN(App app, OwnedApp(owner, app_id));
  ASSIGN_OR_RETURN(Migration m, OwnedMigration(owner, migration_id));
  if (m.app_id != app.id) return NotFound("migration " + migration_id + " not found");
  return m;
}

Result<std::vector<Migration>> MigrationService::List(const std::string& owner,
                                                      const std::string& app_id) {
  ASSIGN_OR_RETURN(App app, OwnedApp(owner, app_id));
  return deps_.store->ListMigrations(app.id);
}

Result<std::optional<Migration>> MigrationService::Active(const std::string& owner,
                                                          const std::string& app_id) {
  ASSIGN_OR_RETURN(App app, OwnedApp(owner, app_id));
  return deps_.store->GetActiveMigration(app.id);
}

Result<std::vector<MigrationEvent>> MigrationService::Events(const std::string& owner,
                                                             const std::string& app_id,
                                                             const std::string& migration_id) {
  ASSIGN_OR_RETURN(Migration m, Get(owner, app_id, migration_id));
  return deps_.store->ListEvents(m.id);
}

Result<Migration> MigrationService::Abort(const std::string& owner, const std::string& app_id,
                                          const std::string& migration_id) {
  ASSIGN_OR_RETURN(Migration m, Get(owner, app_id, migration_id));
  RETURN_IF_ERROR(deps_.store->RequestAbort(m.id, deps_.clock->NowMs()));
  return deps_.store->GetMigration(m.id);
}

Result<Migration> MigrationService::Reverse(const std::string& owner, const std::string& app_id,
                                            const std::string& migration_id) {
  ASSIGN_OR_RETURN(Migration f, Get(owner, app_id, migration_id));
  auto refuse = [](const std::string& why) { return Conflict(why, "not_reversible"); };
  if (f.current_step != Step::kCompleted) {
    return refuse("migration " + f.id + " is not completed; only a completed move can be reversed");
  }
  ASSIGN_OR_RETURN(auto all, deps_.store->ListMigrations(f.app_id));
  for (const auto& other : all) {
    if (other.terminal()) continue;
    if (other.reverse_of == f.id) {
      return refuse("a reverse of migration " + f.id + " is already in flight: " + other.id);
    }
    return refuse("app " + f.app_id + " has migration " + other.id + " in flight");
  }
  auto latest = std::find_if(all.begin(), all.end(),
                             [](const Migration& x) { return x.current_step == Step::kCompleted; });
  if (latest == all.end() || latest->id != f.id) {
    if (latest != all.end() && latest->reverse_of == f.id) {
      return refuse("migration " + f.id + " was already reversed by " + latest->id);
    }
    return refuse("migration " + f.id + " is not the app's latest completed migration");
  }
  ASSIGN_OR_RETURN(App app, OwnedApp(owner, app_id));
  if (app.status != kAppReady) return refuse("app " + app.id + " is " + app.status);
  if (f.source_replica_state == kReplicaReplicating) {
    // A replica that has diverged since the last background check is found now: its reverse
    // is a slow one. (A replica that cannot be reached is tried the fast way, which retries.)
    auto lag = deps_.plane->replicator()->Lag(f.app_id, f.dest_region, f.source_region);
    if (lag.ok() && !lag->diverged.empty()) {
      Status d = MarkDiverged(f, lag->diverged);
      if (!d.ok() && d.reason() != "replica_state") return d;
    }
  }
  Migration r = Draft(f.app_id, f.owner, f.dest_region, f.source_region);
  r.kind = "reverse";
  r.reverse_of = f.id;
  r.reverse_path = f.source_replica_state == kReplicaReplicating ? "fast" : "slow";
  Status s = deps_.store->CreateMigration(r);
  if (s.reason() == "migration_in_flight" || s.reason() == "app_busy") return refuse(s.message());
  RETURN_IF_ERROR(s);
  return deps_.store->GetMigration(r.id);  // the store has the last word on fast or slow
}

Result<std::vector<ReplicaInfo>> MigrationService::ListReplicas(const std::string& owner) {
  ASSIGN_OR_RETURN(auto retained, deps_.store->ListRetainedReplicas());
  std::vector<ReplicaInfo> out;
  for (auto& m : retained) {
    if (!owner.empty() && m.owner != owner) continue;
    ReplicaInfo info;
    if (RegionPlane* r = deps_.plane->Region(m.source_region)) {
      info.size_bytes = AppBytes(r, m.app_id);
    }
    if (m.source_replica_state == kReplicaReplicating) {
      auto lag = deps_.plane->replicator()->Lag(m.app_id, m.dest_region, m.source_region);
      if (lag.ok()) {
        info.lag_bytes = lag->bytes;
        info.lag_seconds = lag->seconds;
        info.lag_changes = lag->changes;
        info.apply_errors = lag->apply_errors;
        info.reason = lag->diverged;
      }
    } else if (m.source_replica_state == kReplicaDiverged) {
      ASSIGN_OR_RETURN(auto events, deps_.store->ListEvents(m.id));
      for (const auto& e : events) {
        if (e.type == "replica_diverged") info.reason = e.message;
      }
    }
    info.estimated_monthly_cost_usd = static_cast<double>(info.size_bytes) /
                                      (1024.0 * 1024 * 1024) * deps_.config->price_per_gb_month_usd;
    info.migration = std::move(m);
    out.push_back(std::move(info));
  }
  return out;
}

Status MigrationService::Teardown(const std::string& owner, const std::string& migration_id) {
  ASSIGN_OR_RETURN(Migration m, OwnedMigration(owner, migration_id));
  return TeardownReplica(deps_, m.id, "requested by " + (owner.empty() ? "an admin" : owner));
}

Status MigrationService::RetryDebris() { return steps::RetryDebris(deps_); }

Result<std::vector<Migration>> MigrationService::ListDebris(const std::string& owner) {
  ASSIGN_OR_RETURN(auto all, deps_.store->ListMigrationsWithDebris());
  std::vector<Migration> out;
  for (auto& m : all) {
    if (owner.empty() || m.owner == owner) out.push_back(std::move(m));
  }
  return out;
}

Status MigrationService::ResumeTeardowns() { return regionmove::ResumeTeardowns(deps_); }

Status MigrationService::MarkDiverged(const Migration& m, const std::string& why) {
  MigrationEvent e = InstantEvent(m, "replica_diverged", why, deps_.clock->NowMs());
  RETURN_IF_ERROR(deps_.store->SetReplicaState(m.id, kReplicaReplicating, kReplicaDiverged, &e));
  Log(LogLevel::kWarn, "replica_diverged", {{"migration_id", m.id}, {"reason", why}});
  // Replication it cannot use goes (a PostgreSQL slot would keep WAL); the copy stays until a
  // teardown, the retention or the slow reverse replaces it. A failure here is retried by
  // the teardown, which stops replication first.
  Status s = deps_.plane->replicator()->Stop(m.app_id, m.dest_region, m.source_region);
  if (!s.ok()) Log(LogLevel::kWarn, "replica_diverged_stop", {{"error", s.ToString()}});
  return Status::Ok();
}

Status MigrationService::PumpReplicas(bool wait) {
  ASSIGN_OR_RETURN(auto retained, deps_.store->ListRetainedReplicas());
  Status first;
  for (const auto& m : retained) {
    if (m.source_replica_state != kReplicaReplicating) continue;
    Replicator* r = deps_.plane->replicator();
    Status s = wait ? r->Pump(m.app_id, m.dest_region, m.source_region).status()
                    : r->Tick(m.app_id, m.dest_region, m.source_region);
    if (s.reason() == "replica_diverged") s = MarkDiverged(m, s.message());
    if (s.reason() == "replica_state") continue;  // a step or a teardown changed it meanwhile
    // NotFound: a step or a teardown stopped this replication since the list was read.
    if (!s.ok() && s.code() != StatusCode::kNotFound && first.ok()) first = s;
  }
  return first;
}

Status MigrationService::EnforceRetention() {
  int days = deps_.config->retention_days;
  if (days <= 0) return Status::Ok();
  ASSIGN_OR_RETURN(auto retained, deps_.store->ListRetainedReplicas());
  int64_t cutoff = deps_.clock->NowMs() - int64_t{days} * 86'400'000;
  for (const auto& m : retained) {
    if (m.source_replica_state == kReplicaReplicating && m.completed_at_ms < cutoff) {
      Status s = TeardownReplica(deps_, m.id,
                                 "older than the retention of " + std::to_string(days) + " days");
      // An app busy with a migration keeps its replica until the next round.
      if (!s.ok() && s.reason() != "app_busy" && s.reason() != "not_replicating") return s;
    }
  }
  return Status::Ok();
}

Result<std::optional<Migration>> MigrationService::WriteBlocker(const std::string& app_id) {
  ASSIGN_OR_RETURN(auto active, deps_.store->GetActiveMigration(app_id));
  if (active && active->writes_blocked()) return active;
  return std::optional<Migration>();
}

std::optional<int64_t> MigrationService::EtaSeconds(const Migration& m) const {
  if (m.terminal()) return 0;
  const Progress& p = m.progress;
  if (p.bytes_total <= 0 || p.bytes_done <= 0 || m.step_started_at_ms <= 0) return std::nullopt;
  double elapsed = static_cast<double>(deps_.clock->NowMs() - m.step_started_at_ms) / 1000.0;
  double left = elapsed * static_cast<double>(p.bytes_total - p.bytes_done) /
                static_cast<double>(p.bytes_done);
  const Plan& plan = m.plan();
  int steps_left = std::max(0, plan.size() - plan.Index(m.current_step) - 2);
  return static_cast<int64_t>(left) + steps_left;
}

int64_t MigrationService::RetryAfterSeconds(const Migration& m) const {
  const int64_t most = deps_.config->max_retry_after_seconds;
  // What is left of the pause that reserving_dest estimated (from the move's bytes and the
  // rates of the last moves); once past it, soon (the copy is late, not stuck for long).
  json res = json::parse(m.resources, nullptr, false);
  if (res.is_object() && res.contains("block_estimate_seconds")) {
    const double estimate = res.value("block_estimate_seconds", 0.0);
    const int64_t started = res.value("block_started_at_ms", int64_t{0});
    const double elapsed =
        started > 0 ? static_cast<double>(deps_.clock->NowMs() - started) / 1000.0 : 0.0;
    const double left = estimate - elapsed;
    const double wait = left >= 1 ? left : std::max(1.0, 0.25 * elapsed);
    return std::clamp<int64_t>(static_cast<int64_t>(std::ceil(wait)), 1, most);
  }
  auto eta = EtaSeconds(m);
  return eta ? std::clamp<int64_t>(*eta, 1, most) : std::min<int64_t>(60, most);
}

bool MigrationService::IsReversible(const Migration& m) {
  if (m.current_step != Step::kCompleted) return false;
  auto all = deps_.store->ListMigrations(m.app_id);
  if (!all.ok()) return false;
  for (const auto& other : *all) {
    if (!other.terminal()) return false;
    if (other.current_step == Step::kCompleted) return other.id == m.id;
  }
  return false;
}

}  // namespace regionmove
