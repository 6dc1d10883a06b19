#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/pg.h"
#include "common/wakeup.h"
#include "store/control_store.h"

namespace regionmove {

// ControlStore on PostgreSQL, shared by any number of API servers and workers on any number of
// machines. Thread-safe: each call borrows a connection from a bounded pool.
//
// Concurrency: transactions run at READ COMMITTED; every rule that reads before it writes
// takes a lock first, so that two processes cannot both pass a check (write skew):
//   - one active migration per app: a partial unique index, plus the app row locked (FOR UPDATE)
//     by CreateMigration, RepairMigration and BeginTeardown, which also check app_operations;
//   - abort versus flip: RequestAbort and CommitFlip lock the migration row first;
//   - admission caps and region capacity: a transaction-scoped advisory lock (one for
//     admission, one per region for capacity) around the count and the write;
//   - claims: FOR UPDATE SKIP LOCKED; epochs come from a sequence, so a new claim's epoch is
//     higher than every epoch handed out before it;
//   - the other writes are compare-and-set updates whose predicate PostgreSQL re-checks on
//     the row's newest version.
// A transaction that fails with a serialization failure or a deadlock, or whose connection
// breaks before COMMIT was sent, is retried (a few times, with backoff); a connection lost during
// COMMIT is reported as Unavailable (its outcome is unknown, and the saga re-reads).
//
// Schema migrations are applied by Open() under an advisory lock: processes starting together
// apply each version once.
//
// Wake-ups: every change that can make a migration claimable sends NOTIFY on one channel;
// WaitForWork listens on a dedicated connection.
class PgControlStore final : public ControlStore {
 public:
  struct Options {
    int max_connections = 8;
  };
  // `dsn` names the control-store database (created if missing, when the role may).
  static Result<std::unique_ptr<PgControlStore>> Open(const std::string& dsn, Options options);
  ~PgControlStore() override;
  static int SchemaVersion();

  // The database server's clock, in milliseconds since the Unix epoch.
  Result<int64_t> DatabaseNowMs();

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
  using Body = std::function<Status(pg::Conn&)>;
  PgControlStore(std::string conninfo, Options o);
  Status ApplySchema();
  // Runs `body` inside BEGIN ... COMMIT, retrying what is safe to retry (see the class comment).
  Status Write(const Body& body);
  // Runs `body` (reads only) outside a transaction, retrying on a lost connection.
  Status Read(const Body& body);
  Status Run(const Body& body, bool txn);
  // Every row of one read-only statement, each decoded by `read(pg::Row)`.
  template <class T, class Fn>
  Result<std::vector<T>> Select(const std::string& sql, const pg::Params& params, Fn read) {
    std::vector<T> out;
    RETURN_IF_ERROR(Read([&](pg::Conn& c) {
      ASSIGN_OR_RETURN(pg::Rows r, c.Query(sql, params));
      out.clear();
      for (int i = 0; i < r.size(); ++i) out.push_back(read(pg::Row{&r, i}));
      return Status::Ok();
    }));
    return out;
  }
  Result<std::vector<Migration>> QueryMigrations(const std::string& tail, const pg::Params& p);
  Status WriteMigration(pg::Conn& c, const Migration& m, int64_t expected_epoch,
                        const std::vector<MigrationEvent>& events, bool flip = false);
  // Writes `events` to the outbox (serialised with every other outbox writer until commit) and,
  // when `routing_changed`, bumps the routing version. Call last in a transaction.
  static Status Announce(pg::Conn& c, const std::vector<WebhookEvent>& events,
                         bool routing_changed);
  static Status InsertEvent(pg::Conn& c, const MigrationEvent& e);
  void Listen();

  const std::string conninfo_;
  pg::Pool pool_;

  Wakeup work_;
  Callback change_listener_;  // notified by the listener thread on each notification
  std::atomic<bool> stop_{false};
  std::thread listener_;
};

}  // namespace regionmove
