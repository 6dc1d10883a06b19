#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/sqlite.h"
#include "common/wakeup.h"
#include "store/control_store.h"

namespace regionmove {

// ControlStore on one SQLite file (WAL). Within a process one connection is shared behind a
// mutex; several processes may open the same file, their write transactions are serialised by
// SQLite (BEGIN IMMEDIATE + busy timeout). Schema migrations are applied by Open().
class SqliteControlStore final : public ControlStore {
 public:
  static Result<std::unique_ptr<SqliteControlStore>> Open(const std::string& path);
  // The schema version this build writes.
  static int SchemaVersion();

  Status CreateApp(const App& app) override;
  Result<App> GetApp(const std::string& app_id) override;
  Result<std::vector<App>> ListApps(const std::string& owner) override;
  Status AddRoute(const Route& route) override;
  Status RemoveRoute(const std::string& host) override;
  Result<Route> ResolveHost(const std::string& host) override;
  Result<std::vector<Route>> ListRoutes(const std::string& app_id) override;

  Status CreateMigration(const Migration& m) override;
  Result<Migration> GetMigration(const std::string& id) override;
  Result<std::vector<Migration>> ListMigrations(const std::string& app_id) override;
  Result<std::optional<Migration>> GetActiveMigration(const std::string& app_id) override;
  Result<std::vector<Migration>> ListActiveMigrations() override;
  Result<std::vector<Migration>> ListRetainedReplicas() override;
  Result<std::vector<Migration>> ListRecentCopies(const std::string& strategy, int limit) override;
  Result<std::optional<Migration>> ClaimNext(const std::string& owner, int64_t now_ms,
                                             int64_t lease_ms) override;
  Status UpdateMigration(const Migration& m, int64_t expected_epoch,
                         const std::vector<MigrationEvent>& events) override;
  Status Heartbeat(const std::string& id, int64_t epoch, int64_t lease_expires_at_ms) override;
  Result<bool> TryAdmit(const std::string& id, int64_t expected_epoch, int global_cap,
                        int region_cap) override;
  Status CommitFlip(const Migration& m, int64_t expected_epoch,
                    const std::vector<MigrationEvent>& events) override;
  Status RequestAbort(const std::string& id, int64_t now_ms) override;
  Status RepairMigration(const std::string& id, int64_t now_ms) override;
  Result<std::vector<Migration>> ListMigrationsWithDebris() override;
  Status SetTerminalResources(const std::string& id, const std::string& expected,
                              const std::string& next) override;
  Status BeginTeardown(const std::string& id, const std::string& by_migration,
                       const std::string& owner, int64_t now_ms, int64_t lease_ms) override;
  Status FinishTeardown(const std::string& id, const std::string& owner,
                        const MigrationEvent& event) override;
  Status SetReplicaState(const std::string& id, const std::string& expected,
                         const std::string& next, const MigrationEvent* event) override;
  Status AppendEvent(const MigrationEvent& event) override;
  Result<std::vector<MigrationEvent>> ListEvents(const std::string& migration_id) override;

  Status Reserve(const Reservation& r) override;
  Status ReserveWithinCapacity(const Reservation& r, int64_t base_apps, int64_t base_bytes,
                               int64_t max_apps, int64_t max_bytes) override;
  Status ReleaseReservation(const std::string& migration_id, const std::string& region) override;
  Result<std::vector<Reservation>> ListReservations(const std::string& region) override;

  Status UpsertUser(const User& user) override;
  Status AddTokenHash(const std::string& token_sha256_hex, const std::string& user) override;
  Result<User> UserForTokenHash(const std::string& token_sha256_hex) override;

  Result<int64_t> RoutingVersion() override;
  Result<RoutingTable> GetRoutingTable() override;
  void SetChangeListener(std::function<void()> fn) override { change_listener_.Set(std::move(fn)); }
  Result<int64_t> OutboxEnd() override;
  Result<std::vector<WebhookEvent>> ListOutbox(int64_t after_seq, int limit) override;
  Status StartWebhook(const std::string& name) override;
  Result<int> QueueWebhookDeliveries(const std::string& name,
                                     const std::vector<std::string>& patterns, int64_t now_ms,
                                     int limit) override;
  Result<std::vector<WebhookDelivery>> DueWebhookDeliveries(const std::string& name, int64_t now_ms,
                                                            int limit) override;
  Status RecordWebhookAttempt(const WebhookDelivery& d) override;
  Result<int> PruneOutbox(int64_t before_ms, int limit) override;
  Result<std::vector<WebhookDelivery>> ListWebhookDeliveries(const std::string& status,
                                                             int limit) override;

  Result<bool> TryLease(const std::string& name, const std::string& owner, int64_t now_ms,
                        int64_t lease_ms) override;
  void WaitForWork(int64_t timeout_ms) override;
  Status Health() override;

 private:
  explicit SqliteControlStore(std::unique_ptr<sqlite::Db> db) : db_(std::move(db)) {}
  Status ApplySchema();
  Result<std::vector<Migration>> QueryMigrations(const std::string& where, const std::string& bind);
  // REQUIRES: mu_ held, inside a transaction.
  Status WriteMigrationLocked(const Migration& m, int64_t expected_epoch,
                              const std::vector<MigrationEvent>& events, bool flip = false);
  // Writes `events` to the outbox and, when `routing_changed`, bumps the routing version.
  // REQUIRES: mu_ held, inside a transaction.
  Status AnnounceLocked(const std::vector<WebhookEvent>& events, bool routing_changed);
  Status InsertEventLocked(const MigrationEvent& e);

  // Group commit. Every call runs in a savepoint of one transaction that the calls arriving
  // while it runs share; the last of them commits it for all (one fsync instead of one each)
  // and the others wait for that. A call returns once what it wrote, or read, is durable; if
  // the shared commit fails, every call of the batch returns its error.
  class Batch {
   public:
    Batch(Batch&& o) noexcept
        : store_(std::exchange(o.store_, nullptr)), lock_(std::move(o.lock_)), id_(o.id_) {}
    Batch(const Batch&) = delete;
    ~Batch();  // without Commit(): undoes the call's writes, then leaves the batch
    // Keeps the call's writes; ok once the batch that holds them is committed.
    Status Commit();

   private:
    friend class SqliteControlStore;
    Batch(SqliteControlStore* store, std::unique_lock<std::mutex> lock, int64_t id)
        : store_(store), lock_(std::move(lock)), id_(id) {}
    Status Leave();
    SqliteControlStore* store_;
    std::unique_lock<std::mutex> lock_;
    int64_t id_;
  };
  Result<Batch> JoinBatch();

  std::mutex mu_;  // the connection, and the batch below
  std::condition_variable batch_done_;
  std::atomic<int> arriving_{0};  // calls waiting for mu_: they will join the open batch
  bool batch_open_ = false;
  int64_t batch_id_ = 0, durable_id_ = 0;
  std::map<int64_t, Status> failed_batches_;  // the latest few whose commit failed
  Wakeup work_;  // notified on each change that can make a migration claimable
  Callback change_listener_;
  bool announced_ = false;  // the open batch bumped the routing version or wrote the outbox
                            // (guarded by mu_)
  std::unique_ptr<sqlite::Db> db_;
  // Reads (of migrations, apps, routes, events, reservations, webhook deliveries, tokens: the
  // guard asks for every write, clients poll, a move reads its app between steps) on a
  // connection of their own: they see what is committed, and wait neither for the store's mutex
  // nor for a batch's fsync. A read that must agree with a write of its own call stays in the
  // batch.
  std::mutex read_mu_;
  std::unique_ptr<sqlite::Db> read_db_;
};

}  // namespace regionmove
