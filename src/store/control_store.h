#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "domain/app.h"
#include "domain/integration.h"
#include "domain/migration.h"

namespace regionmove {

// The durable control plane: apps, routes, migrations and their history, reservations, users
// and API tokens. Every method is one atomic transaction. Implementations are thread-safe and
// safe to share between processes on the same backing database.
//
// Fencing: the execution fields of a migration are written only by the worker that holds its
// lease, with a compare-and-set on `epoch` (UpdateMigration, TryAdmit, CommitFlip). Claiming
// a migration increments its epoch, so a stale worker's writes fail with Conflict("fenced").
// The abort flag is written only by RequestAbort and is never overwritten by UpdateMigration.
class ControlStore {
 public:
  virtual ~ControlStore() = default;

  // ---- apps and routes ----
  // Creates the app and a route for its subdomain.
  // Conflict("subdomain_taken") when the subdomain is already routed; Conflict when the id exists.
  virtual Status CreateApp(const App& app) = 0;
  virtual Result<App> GetApp(const std::string& app_id) = 0;
  // All apps of `owner`, or every app when `owner` is empty; oldest first.
  virtual Result<std::vector<App>> ListApps(const std::string& owner) = 0;
  // Adds a custom domain route. Conflict("domain_taken") if another app has it.
  virtual Status AddRoute(const Route& route) = 0;
  virtual Status RemoveRoute(const std::string& host) = 0;
  virtual Result<Route> ResolveHost(const std::string& host) = 0;
  virtual Result<std::vector<Route>> ListRoutes(const std::string& app_id) = 0;

  // ---- migrations ----
  // Inserts a new migration and marks its app `migrating`. At most one non-terminal migration
  // per app is enforced here: Conflict("migration_in_flight") for a second one, and
  // Conflict("app_busy") while a teardown of the app's replica runs. A fast reverse whose
  // forward replica is no longer replicating when the row is written is stored as slow (the
  // choice is atomic with the creation: read the migration back for its path).
  virtual Status CreateMigration(const Migration& m) = 0;
  virtual Result<Migration> GetMigration(const std::string& id) = 0;
  // Newest first.
  virtual Result<std::vector<Migration>> ListMigrations(const std::string& app_id) = 0;
  virtual Result<std::optional<Migration>> GetActiveMigration(const std::string& app_id) = 0;
  // Every non-terminal migration, oldest first.
  virtual Result<std::vector<Migration>> ListActiveMigrations() = 0;
  // Terminal migrations whose resources record destination debris (compensation could not
  // remove everything), oldest first.
  virtual Result<std::vector<Migration>> ListMigrationsWithDebris() = 0;
  // Compare-and-set of a terminal migration's resources. Conflict("resources_changed").
  virtual Status SetTerminalResources(const std::string& id, const std::string& expected,
                                      const std::string& next) = 0;
  // Completed migrations whose source replica is retained (replicating, diverged or
  // tearing_down).
  virtual Result<std::vector<Migration>> ListRetainedReplicas() = 0;
  // The latest `limit` completed migrations of `strategy` that copied an app (moves and slow
  // reverses, not fast ones), newest first: what the dry run measures its rates from.
  virtual Result<std::vector<Migration>> ListRecentCopies(const std::string& strategy,
                                                          int limit) = 0;

  // Claims one runnable migration (non-terminal, lease free or expired, next attempt due) for
  // `owner` until now + lease_ms, giving it a new epoch: higher than every epoch any migration
  // has had, so that epochs also serve the data plane as fencing tokens (Database::Restore).
  // nullopt when nothing is runnable.
  virtual Result<std::optional<Migration>> ClaimNext(const std::string& owner, int64_t now_ms,
                                                     int64_t lease_ms) = 0;
  // Compare-and-set of every execution field of `m` on (id, expected_epoch, lease owner),
  // appending `events` in the same transaction. When `m` becomes terminal the app's status
  // follows (ready, or needs_repair). Conflict("fenced") when the epoch moved on.
  virtual Status UpdateMigration(const Migration& m, int64_t expected_epoch,
                                 const std::vector<MigrationEvent>& events) = 0;
  // Extends the lease. Conflict("fenced") when the epoch moved on.
  virtual Status Heartbeat(const std::string& id, int64_t epoch, int64_t lease_expires_at_ms) = 0;
  // Admission to the concurrency caps: marks `m` admitted if fewer than `global_cap` admitted
  // non-terminal migrations exist and fewer than `region_cap` touch its source and its dest
  // region. Returns whether it was admitted. Conflict("fenced") on a stale epoch.
  virtual Result<bool> TryAdmit(const std::string& id, int64_t expected_epoch, int global_cap,
                                int region_cap) = 0;
  // The cutover, in one transaction: the app's region, every route of the app and its routing
  // version move to m.dest_region; `m` (which the caller has advanced past the flip, with
  // cutover_committed set) is written as in UpdateMigration. Refused with
  // Conflict("abort_won") if an abort was requested first.
  virtual Status CommitFlip(const Migration& m, int64_t expected_epoch,
                            const std::vector<MigrationEvent>& events) = 0;
  // Sets the abort flag (and makes the migration runnable now). NotFound; Conflict("not_active")
  // for a terminal migration; Conflict("cutover_passed") once the flip has committed.
  // Idempotent while aborting.
  virtual Status RequestAbort(const std::string& id, int64_t now_ms) = 0;
  // Re-drives a migration that failed after its cutover: back to the step it stopped at,
  // attempts reset, runnable now. NotFound; Conflict("not_repairable") otherwise.
  virtual Status RepairMigration(const std::string& id, int64_t now_ms) = 0;
  // ---- teardown of a retained replica: an operation on the app (SPEC §5) ----
  // Starts or resumes the teardown of the replica of completed migration `id` for `owner`,
  // holding the app's operation slot until `now_ms + lease_ms`: the replica state becomes
  // tearing_down. Refused with Conflict("not_replicating") when the replica is not replicating
  // (or diverged, or being torn down), Conflict("app_busy") while a migration of the app other than
  // `by_migration` is active, Conflict("teardown_running") while another owner's lease on the
  // teardown is live. Calling it again as the same owner renews the lease.
  virtual Status BeginTeardown(const std::string& id, const std::string& by_migration,
                               const std::string& owner, int64_t now_ms, int64_t lease_ms) = 0;
  // Ends the teardown `owner` holds, in one transaction: replica torn_down, the reservation in
  // the replica's region released, `event` appended, the app's operation slot freed.
  // Conflict("fenced") when `owner` no longer holds it.
  virtual Status FinishTeardown(const std::string& id, const std::string& owner,
                                const MigrationEvent& event) = 0;

  // Compare-and-set of the replica state of a completed migration, appending `event` (when
  // given) in the same transaction. Conflict("replica_state") when it is not `expected`.
  virtual Status SetReplicaState(const std::string& id, const std::string& expected,
                                 const std::string& next,
                                 const MigrationEvent* event = nullptr) = 0;

  virtual Status AppendEvent(const MigrationEvent& event) = 0;
  // Oldest first.
  virtual Result<std::vector<MigrationEvent>> ListEvents(const std::string& migration_id) = 0;

  // ---- reservations ----
  // Idempotent per (migration_id, region).
  virtual Status Reserve(const Reservation& r) = 0;
  // Reserve, only if the region stays within its caps, checked in the same transaction:
  // `base_apps` and `base_bytes` are what the region holds besides reservations (the caller
  // measures them on the data plane, without r.app_id); the other reservations of the region
  // (not r's migration, not r's app) are counted here. Conflict("insufficient_capacity").
  virtual Status ReserveWithinCapacity(const Reservation& r, int64_t base_apps, int64_t base_bytes,
                                       int64_t max_apps, int64_t max_bytes) = 0;
  virtual Status ReleaseReservation(const std::string& migration_id, const std::string& region) = 0;
  virtual Result<std::vector<Reservation>> ListReservations(const std::string& region) = 0;

  // ---- users and tokens ----
  virtual Status UpsertUser(const User& user) = 0;
  // Stores the SHA-256 (hex) of a token, never the token itself.
  virtual Status AddTokenHash(const std::string& token_sha256_hex, const std::string& user) = 0;
  virtual Result<User> UserForTokenHash(const std::string& token_sha256_hex) = 0;

  // ---- integration: the routing feed and the webhook outbox (SPEC §7) ----
  // The routing version alone (cheap: long-polling clients ask it often).
  virtual Result<int64_t> RoutingVersion() = 0;
  // Every app, route and write block with the version they make up, in one transaction.
  virtual Result<RoutingTable> GetRoutingTable() = 0;
  // `fn` is called soon after a change of the routing version or a new outbox entry commits:
  // this process's changes on SQLite, every process's on PostgreSQL (where other processes'
  // changes are otherwise seen by polling RoutingVersion and OutboxEnd). Spurious calls are
  // allowed; `fn` must be quick and must not call the store. Replaces the previous listener
  // (nullptr clears it); once it returns, the previous one is no longer called.
  virtual void SetChangeListener(std::function<void()> fn) = 0;
  // The outbox's last sequence number, 0 when it is empty (cheap: waiting clients ask it often).
  virtual Result<int64_t> OutboxEnd() = 0;
  // The outbox entries after `after_seq`, oldest first, at most `limit`: the change stream of
  // GET /v1/events (sequence order is commit order, so a reader's position never skips one).
  virtual Result<std::vector<WebhookEvent>> ListOutbox(int64_t after_seq, int limit) = 0;
  // Starts delivering to webhook `name` from the outbox's current end, unless it has a
  // position already (kept across restarts and config reloads). Idempotent.
  virtual Status StartWebhook(const std::string& name) = 0;
  // Queues for `name` the outbox entries after its position whose type `patterns` match (at
  // most `limit` entries read), moving the position past them, in one transaction. Returns how
  // many entries were read (0 when the outbox holds nothing new).
  virtual Result<int> QueueWebhookDeliveries(const std::string& name,
                                             const std::vector<std::string>& patterns,
                                             int64_t now_ms, int limit) = 0;
  // The pending deliveries of `name` due at `now_ms` that are the oldest pending of their app
  // (so that an app's events go out in order while other apps' proceed), oldest first.
  virtual Result<std::vector<WebhookDelivery>> DueWebhookDeliveries(const std::string& name,
                                                                    int64_t now_ms, int limit) = 0;
  // Records an attempt: status, attempts, next_attempt_at_ms, last_error, last_code,
  // updated_at_ms of (d.webhook, d.event.seq).
  virtual Status RecordWebhookAttempt(const WebhookDelivery& d) = 0;
  // Removes the oldest outbox entries created before `before_ms` (at most `limit`, in sequence
  // order: it stops at the first newer one) with their deliveries. Returns how many it removed.
  virtual Result<int> PruneOutbox(int64_t before_ms, int limit) = 0;
  // Deliveries newest first, of one status (or all when empty), at most `limit`.
  virtual Result<std::vector<WebhookDelivery>> ListWebhookDeliveries(const std::string& status,
                                                                     int limit) = 0;

  // ---- coordination and health ----
  // A named lease for work that one process of the deployment does at a time (the background
  // loop: replication pumping, retention, teardown resumption). Takes or renews the lease
  // `name` for `owner` until now_ms + lease_ms when it is free, expired or already `owner`'s;
  // returns whether `owner` holds it.
  virtual Result<bool> TryLease(const std::string& name, const std::string& owner, int64_t now_ms,
                                int64_t lease_ms) = 0;
  // Blocks for up to `timeout_ms` of real time, returning early when work may have arrived for
  // ClaimNext: a migration created, an abort or a repair requested, a lease released. Engines
  // hear of the changes of every process sharing the store where they can (PostgreSQL) and of
  // their own process otherwise (SQLite). Spurious wake-ups are allowed.
  virtual void WaitForWork(int64_t timeout_ms) = 0;
  // Ok while the store answers; Unavailable (with why) otherwise. For /healthz.
  virtual Status Health() = 0;
};

}  // namespace regionmove
