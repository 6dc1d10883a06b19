#pragma once

#include <string>

#include "common/status.h"
#include "domain/app.h"
#include "domain/integration.h"
#include "domain/migration.h"

// What every ControlStore engine shares: the column lists of its tables and the decoding of a
// row into a domain record. A row type needs `std::string Text(int col)` and
// `int64_t Int(int col)`; flags are stored as integers 0/1 on every engine.
namespace regionmove::store {

inline constexpr const char* kMigrationColumns =
    "id, app_id, owner, kind, reverse_of, reverse_path, strategy, source_region, dest_region, "
    "current_step, stopped_at, terminal, admitted, abort_requested, cutover_committed, "
    "needs_repair, compensation, source_replica_state, attempt, retry_count, last_error, "
    "next_attempt_at_ms, initiated_at_ms, step_started_at_ms, completed_at_ms, updated_at_ms, "
    "lease_owner, lease_expires_at_ms, epoch, bytes_done, bytes_total, items_done, items_total, "
    "resources";
inline constexpr int kMigrationColumnCount = 34;

inline constexpr const char* kAppColumns =
    "id, name, owner, subdomain, region, status, created_at_ms, routing_version";

inline constexpr const char* kEventColumns =
    "seq, migration_id, type, step, from_step, to_step, attempt, started_at_ms, ended_at_ms, "
    "error, bytes, message";

// Run when an admitted move ends, at time $1 on regions $2 and $3 (its admission slot is free):
// the two oldest moves queued on those regions, and the oldest queued of all (a global slot is
// free too), try admission again now instead of at their next poll. ($n: PostgreSQL's
// parameters, and SQLite's named ones, numbered in order of first appearance.)
inline constexpr const char* kWakeQueuedMigrations =
    "UPDATE migrations SET next_attempt_at_ms = $1 WHERE id IN (SELECT id FROM migrations WHERE "
    "terminal = 0 AND admitted = 0 AND next_attempt_at_ms > $1 AND (source_region IN ($2, $3) "
    "OR dest_region IN ($2, $3)) ORDER BY initiated_at_ms LIMIT 2) OR id IN (SELECT id FROM "
    "migrations WHERE terminal = 0 AND admitted = 0 AND next_attempt_at_ms > $1 ORDER BY "
    "initiated_at_ms LIMIT 1)";

// ---- integration (both engines; $n as above) ----
// The tables of the routing version and the webhook outbox, in an engine's integer type and
// its auto-increment primary key type.
std::string IntegrationSchema(const std::string& int_type, const std::string& seq_type);

inline constexpr const char* kBumpRouting = "UPDATE routing_state SET version = version + 1";
// The app, strategy and step of every active migration: which apps' writes are blocked.
inline constexpr const char* kActiveSteps =
    "SELECT app_id, strategy, current_step FROM migrations WHERE terminal = 0";
inline constexpr const char* kInsertOutbox =
    "INSERT INTO outbox(id, type, app_id, migration_id, created_at_ms, data) "
    "VALUES ($1, $2, $3, $4, $5, $6)";
// Webhook $1 starts at the outbox's end unless it has a position.
inline constexpr const char* kStartWebhook =
    "INSERT INTO webhook_cursors(webhook, seq) SELECT $1, COALESCE(MAX(seq), 0) FROM outbox "
    "WHERE true ON CONFLICT (webhook) DO NOTHING";
inline constexpr const char* kOutboxEnd = "SELECT COALESCE(MAX(seq), 0) FROM outbox";
inline constexpr const char* kOutboxColumns =
    "seq, id, type, app_id, migration_id, created_at_ms, data";
// The outbox entries after sequence number $1, oldest first, at most $2.
inline const std::string kOutboxAfter =
    std::string("SELECT ") + kOutboxColumns + " FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2";
inline constexpr const char* kQueueDelivery =
    "INSERT INTO webhook_deliveries(webhook, seq, app_id, status, attempts, next_attempt_at_ms, "
    "last_error, last_code, updated_at_ms) VALUES ($1, $2, $3, 'pending', 0, $4, '', 0, $4) "
    "ON CONFLICT (webhook, seq) DO NOTHING";
inline constexpr const char* kDeliveryColumns =
    "d.webhook, o.seq, o.id, o.type, o.app_id, o.migration_id, o.created_at_ms, o.data, "
    "d.status, d.attempts, d.next_attempt_at_ms, d.last_error, d.last_code, d.updated_at_ms "
    "FROM webhook_deliveries d JOIN outbox o ON o.seq = d.seq ";
// Pending deliveries of webhook $1 due at $2, each the oldest pending of its app; at most $3.
inline constexpr const char* kDueDeliveries =
    "WHERE d.webhook = $1 AND d.status = 'pending' AND d.next_attempt_at_ms <= $2 AND "
    "d.seq = (SELECT MIN(p.seq) FROM webhook_deliveries p WHERE p.webhook = d.webhook AND "
    "p.app_id = d.app_id AND p.status = 'pending') ORDER BY d.seq LIMIT $3";
inline constexpr const char* kRecordAttempt =
    "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at_ms = $3, "
    "last_error = $4, last_code = $5, updated_at_ms = $6 WHERE webhook = $7 AND seq = $8";
// The oldest $1 outbox entries: what PruneOutbox looks at.
inline constexpr const char* kOldestOutbox =
    "SELECT seq, created_at_ms FROM outbox ORDER BY seq LIMIT $1";
inline constexpr const char* kPruneDeliveries = "DELETE FROM webhook_deliveries WHERE seq <= $1";
inline constexpr const char* kPruneOutbox = "DELETE FROM outbox WHERE seq <= $1";
// The last sequence number of the run of (seq, created_at_ms) rows, oldest first, created
// before `before_ms`, and its length.
template <class Rows>
std::pair<int64_t, int> PruneUpTo(const Rows& rows, int64_t before_ms) {
  std::pair<int64_t, int> up_to{0, 0};
  for (const auto& [seq, created] : rows) {
    if (created >= before_ms) break;
    up_to = {seq, up_to.second + 1};
  }
  return up_to;
}
// Newest first, of status $1 (all when ''), at most $2.
inline constexpr const char* kListDeliveries =
    "WHERE $1 = '' OR d.status = $1 ORDER BY d.updated_at_ms DESC, d.seq DESC LIMIT $2";

template <class Row>
WebhookEvent ReadWebhookEvent(const Row& q, int c = 0) {
  WebhookEvent e;
  e.seq = q.Int(c);
  e.id = q.Text(c + 1);
  e.type = q.Text(c + 2);
  e.app_id = q.Text(c + 3);
  e.migration_id = q.Text(c + 4);
  e.created_at_ms = q.Int(c + 5);
  e.data = q.Text(c + 6);
  return e;
}

template <class Row>
WebhookDelivery ReadDelivery(const Row& q) {
  WebhookDelivery d;
  d.webhook = q.Text(0);
  d.event = ReadWebhookEvent(q, 1);
  d.status = q.Text(8);
  d.attempts = static_cast<int>(q.Int(9));
  d.next_attempt_at_ms = q.Int(10);
  d.last_error = q.Text(11);
  d.last_code = static_cast<int>(q.Int(12));
  d.updated_at_ms = q.Int(13);
  return d;
}

inline Step StepOr(const std::string& name) { return ParseStep(name).value_or(Step::kFailed); }

template <class Row>
Migration ReadMigration(const Row& s) {
  Migration m;
  int c = 0;
  m.id = s.Text(c++);
  m.app_id = s.Text(c++);
  m.owner = s.Text(c++);
  m.kind = s.Text(c++);
  m.reverse_of = s.Text(c++);
  m.reverse_path = s.Text(c++);
  m.strategy = s.Text(c++);
  m.source_region = s.Text(c++);
  m.dest_region = s.Text(c++);
  m.current_step = StepOr(s.Text(c++));
  m.stopped_at = StepOr(s.Text(c++));
  c++;  // terminal is derived from current_step
  m.admitted = s.Int(c++) != 0;
  m.abort_requested = s.Int(c++) != 0;
  m.cutover_committed = s.Int(c++) != 0;
  m.needs_repair = s.Int(c++) != 0;
  m.compensation = static_cast<Compensation>(s.Int(c++));
  m.source_replica_state = s.Text(c++);
  m.attempt = static_cast<int>(s.Int(c++));
  m.retry_count = static_cast<int>(s.Int(c++));
  m.last_error = s.Text(c++);
  m.next_attempt_at_ms = s.Int(c++);
  m.initiated_at_ms = s.Int(c++);
  m.step_started_at_ms = s.Int(c++);
  m.completed_at_ms = s.Int(c++);
  m.updated_at_ms = s.Int(c++);
  m.lease_owner = s.Text(c++);
  m.lease_expires_at_ms = s.Int(c++);
  m.epoch = s.Int(c++);
  m.progress.bytes_done = s.Int(c++);
  m.progress.bytes_total = s.Int(c++);
  m.progress.items_done = s.Int(c++);
  m.progress.items_total = s.Int(c++);
  m.resources = s.Text(c++);
  return m;
}

template <class Row>
MigrationEvent ReadEvent(const Row& q) {
  MigrationEvent e;
  e.seq = q.Int(0);
  e.migration_id = q.Text(1);
  e.type = q.Text(2);
  e.step = StepOr(q.Text(3));
  e.from_step = StepOr(q.Text(4));
  e.to_step = StepOr(q.Text(5));
  e.attempt = static_cast<int>(q.Int(6));
  e.started_at_ms = q.Int(7);
  e.ended_at_ms = q.Int(8);
  e.error = q.Text(9);
  e.bytes = q.Int(10);
  e.message = q.Text(11);
  return e;
}

template <class Row>
App ReadApp(const Row& s) {
  App a;
  a.id = s.Text(0);
  a.name = s.Text(1);
  a.owner = s.Text(2);
  a.subdomain = s.Text(3);
  a.region = s.Text(4);
  a.status = s.Text(5);
  a.created_at_ms = s.Int(6);
  a.routing_version = s.Int(7);
  return a;
}

template <class Row>
Route ReadRoute(const Row& q) {
  return Route{q.Text(0), q.Text(1), q.Text(2), q.Int(3) != 0};
}

template <class Row>
Reservation ReadReservation(const Row& q) {
  return Reservation{q.Text(0), q.Text(1), q.Text(2), q.Int(3), q.Int(4)};
}

inline Status Fenced(const std::string& id) {
  return Conflict("migration " + id + " was claimed by another worker", "fenced");
}

// The app status that follows a migration's state.
inline const char* AppStatusFor(const Migration& m) {
  if (!m.terminal()) return kAppMigrating;
  if (m.current_step == Step::kFailed && m.needs_repair) return kAppNeedsRepair;
  return kAppReady;
}

// The events that RequestAbort and RepairMigration append.
inline MigrationEvent AbortRequestedEvent(const std::string& id, Step step, int64_t now_ms) {
  MigrationEvent e;
  e.migration_id = id;
  e.type = "abort_requested";
  e.step = e.from_step = e.to_step = step;
  e.started_at_ms = e.ended_at_ms = now_ms;
  e.message = "abort requested";
  return e;
}

inline MigrationEvent RepairEvent(const Migration& m, int64_t now_ms) {
  MigrationEvent e;
  e.migration_id = m.id;
  e.type = "repair";
  e.step = e.to_step = m.stopped_at;
  e.from_step = Step::kFailed;
  e.started_at_ms = e.ended_at_ms = now_ms;
  e.message = "re-driven by an admin repair";
  return e;
}

// `m` (failed, needing repair) as RepairMigration writes it: back at the step it stopped at.
inline Migration Redriven(Migration m, int64_t now_ms) {
  m.current_step = m.stopped_at;
  m.needs_repair = false;
  m.updated_at_ms = now_ms;
  return m;
}

inline Status CutoverPassed(const std::string& id) {
  return Conflict("migration " + id +
                      " has passed its cutover; the app is served from the destination. "
                      "Use reverse to move it back.",
                  "cutover_passed");
}

inline Status NoCapacity(const Reservation& r, int64_t apps, int64_t max_apps, int64_t bytes,
                         int64_t max_bytes) {
  return Conflict("region " + r.region + " has no capacity left for this app (" +
                      std::to_string(apps) + " of " + std::to_string(max_apps) + " apps, " +
                      std::to_string(bytes) + " of " + std::to_string(max_bytes) + " bytes)",
                  "insufficient_capacity");
}

// BeginTeardown's rules, shared by the engines. The replica of completed migration `id` must be
// retained (`step`, `state` are its current step and replica state).
inline Status CheckTeardownTarget(const std::string& id, const std::string& step,
                                  const std::string& state) {
  if (step != StepName(Step::kCompleted) ||
      (state != kReplicaReplicating && state != kReplicaDiverged && state != kReplicaTearingDown)) {
    return Conflict("the source replica of migration " + id + " is " +
                        (step == StepName(Step::kCompleted) ? state : "not retained"),
                    "not_replicating");
  }
  return Status::Ok();
}

// No other migration of the app may be active (`active` is the app's active migration, or
// empty).
inline Status CheckTeardownActive(const std::string& app_id, const std::string& active,
                                  const std::string& by_migration) {
  if (!active.empty() && active != by_migration) {
    return Conflict("app " + app_id + " has migration " + active +
                        " in flight; tear the replica down once it has finished",
                    "app_busy");
  }
  return Status::Ok();
}

// The app's operation slot, if held (`held`), must be this teardown, and its lease `owner`'s or
// expired.
inline Status CheckTeardownSlot(const std::string& id, const std::string& app_id, bool held,
                                const std::string& target, const std::string& holder,
                                int64_t expires_ms, const std::string& owner, int64_t now_ms) {
  if (held && target != id) {
    return Conflict("app " + app_id + " is busy tearing down the replica of " + target, "app_busy");
  }
  if (held && holder != owner && expires_ms > now_ms) {
    return Conflict("the replica of migration " + id + " is being torn down", "teardown_running");
  }
  return Status::Ok();
}

inline Status AppBusyTearingDown(const std::string& app_id, const std::string& target) {
  return Conflict(
      "app " + app_id + " is busy: the replica of migration " + target + " is being torn down",
      "app_busy");
}

}  // namespace regionmove::store
