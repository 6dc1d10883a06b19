#include "dataplane/sqlite/sqlite_replicator.h"

#include <vector>

namespace regionmove {

using sqlite::Db;
using sqlite::Stmt;

namespace {

Result<int64_t> ReplicaPosition(Db* db) {
  ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT value FROM _rm_meta WHERE key = "
                                       "'replica_position'"));
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return NotFound("not a replica");
  return std::stoll(q.Text(0));
}

Status SetReplicaPosition(Db* db, int64_t pos) {
  ASSIGN_OR_RETURN(Stmt q, db->Prepare("INSERT INTO _rm_meta(key, value) VALUES "
                                       "('replica_position', ?) ON CONFLICT(key) DO UPDATE SET "
                                       "value = excluded.value"));
  return q.Bind(1, std::to_string(pos)).Run();
}

// A replica equals its primary: a conflicting row takes the primary's version, a change to a
// row that is already gone is dropped.
int OnConflict(void*, int kind, sqlite3_changeset_iter*) {
  return (kind == SQLITE_CHANGESET_DATA || kind == SQLITE_CHANGESET_CONFLICT)
             ? SQLITE_CHANGESET_REPLACE
             : SQLITE_CHANGESET_OMIT;
}

struct Change {
  int64_t seq;
  std::string kind;
  std::string payload;
};

}  // namespace

Result<std::pair<SqliteDatabase*, SqliteDatabase*>> SqliteReplicator::Resolve(
    const std::string& primary, const std::string& replica) {
  SqliteDatabase* p = resolve_(primary);
  SqliteDatabase* r = resolve_(replica);
  if (!p || !r) {
    return Permanent("replication " + primary + " -> " + replica +
                     " needs the sqlite database engine on both sides");
  }
  return std::make_pair(p, r);
}

namespace {

// The sequence number of the last change ever logged in the app's database (0: none): the
// AUTOINCREMENT counter, which deleting the log's rows does not reset.
Result<int64_t> LogHead(SqliteDatabase* sdb, const std::string& app_id) {
  int64_t head = 0;
  RETURN_IF_ERROR(sdb->WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence "
                                         "WHERE name = '_rm_changelog'"));
    ASSIGN_OR_RETURN(bool row, q.Step());
    head = row ? q.Int(0) : 0;
    return Status::Ok();
  }));
  return head;
}

}  // namespace

Status SqliteReplicator::Start(const std::string& app_id, const std::string& primary_region,
                               const std::string& replica_region) {
  ASSIGN_OR_RETURN(auto dbs, Resolve(primary_region, replica_region));
  auto [primary, replica] = dbs;
  bool already = false;
  RETURN_IF_ERROR(replica->WithConnection(app_id, [&](Db* db) -> Status {
    already = ReplicaPosition(db).ok();
    return Status::Ok();
  }));
  if (already) return primary->SetCapture(app_id, true);  // keeps the pending log
  RETURN_IF_ERROR(primary->SetCapture(app_id, true));
  ASSIGN_OR_RETURN(int64_t head, LogHead(primary, app_id));
  return replica->WithWriteTxn(app_id, [&](Db* db) { return SetReplicaPosition(db, head); });
}

Status SqliteReplicator::StartFromSnapshot(
    const std::string& app_id, const std::string& primary_region, const std::string& replica_region,
    const std::function<Status(const nlohmann::json& at)>& copy) {
  ASSIGN_OR_RETURN(auto dbs, Resolve(primary_region, replica_region));
  auto [primary, replica] = dbs;
  RETURN_IF_ERROR(primary->SetCapture(app_id, true));  // every change from here on is logged
  RETURN_IF_ERROR(copy(nlohmann::json::object()));
  ASSIGN_OR_RETURN(int64_t head, LogHead(replica, app_id));
  return replica->WithWriteTxn(app_id, [&](Db* db) -> Status {
    // From here on the replica records which rows each applied change touches.
    RETURN_IF_ERROR(
        db->Exec("DROP TABLE IF EXISTS _rm_touched; CREATE TABLE _rm_touched ("
                 "tbl TEXT NOT NULL, key BLOB NOT NULL, PRIMARY KEY (tbl, key)) "
                 "WITHOUT ROWID"));
    return SetReplicaPosition(db, head);
  });
}

namespace {

// Records in _rm_touched the rows `changeset` changes (their primary keys, as the digest
// encodes values), in the applying transaction.
Status RecordTouched(Db* db, const std::string& changeset) {
  sqlite3_changeset_iter* it = nullptr;
  int rc = sqlite3changeset_start(&it, static_cast<int>(changeset.size()),
                                  const_cast<char*>(changeset.data()));
  if (rc != SQLITE_OK) return sqlite::FromCode(rc, db->raw(), "changeset start");
  std::unique_ptr<sqlite3_changeset_iter, int (*)(sqlite3_changeset_iter*)> guard(
      it, sqlite3changeset_finalize);
  ASSIGN_OR_RETURN(Stmt ins, db->Prepare("INSERT OR IGNORE INTO _rm_touched(tbl, key) "
                                         "VALUES (?, ?)"));
  while (sqlite3changeset_next(it) == SQLITE_ROW) {
    const char* table = nullptr;
    int columns = 0, op = 0, indirect = 0;
    sqlite3changeset_op(it, &table, &columns, &op, &indirect);
    unsigned char* pk = nullptr;
    sqlite3changeset_pk(it, &pk, &columns);
    std::string key;
    for (int c = 0; c < columns; ++c) {
      if (!pk[c]) continue;
      sqlite3_value* v = nullptr;
      rc = op == SQLITE_INSERT ? sqlite3changeset_new(it, c, &v) : sqlite3changeset_old(it, c, &v);
      if (rc != SQLITE_OK || !v) return sqlite::FromCode(rc, db->raw(), "changeset key");
      SqliteDatabase::AppendValue(&key, v);
    }
    ins.Reset();
    RETURN_IF_ERROR(ins.Bind(1, table).BindBlob(2, key.data(), key.size()).Run());
  }
  return Status::Ok();
}

Result<bool> Tracking(Db* db) {
  ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                       "name = '_rm_touched'"));
  return q.Step();
}

}  // namespace

Result<DigestScope> SqliteReplicator::Changed(const std::string& app_id,
                                              const std::string& primary_region,
                                              const std::string& replica_region) {
  ASSIGN_OR_RETURN(auto dbs, Resolve(primary_region, replica_region));
  DigestScope scope;
  RETURN_IF_ERROR(dbs.second->WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(bool tracking, Tracking(db));
    if (!tracking) return Status::Ok();  // not started from a snapshot: whole
    ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT tbl, key FROM _rm_touched ORDER BY tbl, key"));
    scope.whole = false;
    while (true) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      if (q.Text(0).empty()) {  // a change that is not to rows
        scope = DigestScope{};
        return Status::Ok();
      }
      scope.keys[q.Text(0)].push_back(q.Blob(1));
    }
    return Status::Ok();
  }));
  return scope;
}

Result<ReplicationLag> SqliteReplicator::Pump(const std::string& app_id,
                                              const std::string& primary_region,
                                              const std::string& replica_region) {
  ASSIGN_OR_RETURN(auto dbs, Resolve(primary_region, replica_region));
  auto [primary, replica] = dbs;
  std::lock_guard<std::mutex> lock(pump_mu_);
  int64_t pos = 0;
  RETURN_IF_ERROR(replica->WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(pos, ReplicaPosition(db));
    return Status::Ok();
  }));
  // Up to the primary's position as of this call: writers that keep the log growing cannot
  // hold the call (a lag gate decides what to make of the rest).
  ASSIGN_OR_RETURN(int64_t head, LogHead(primary, app_id));
  while (pos < head) {
    std::vector<Change> batch;
    RETURN_IF_ERROR(primary->WithConnection(app_id, [&](Db* db) -> Status {
      ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT seq, kind, payload FROM _rm_changelog "
                                           "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 512"));
      q.Bind(1, pos).Bind(2, head);
      while (true) {
        ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        batch.push_back(Change{q.Int(0), q.Text(1), q.Blob(2)});
      }
      return Status::Ok();
    }));
    if (batch.empty()) break;
    // The batch's changes, the rows they touched and the new position commit together.
    RETURN_IF_ERROR(replica->WithWriteTxn(app_id, [&](Db* db) -> Status {
      // Another applier (another process) may have applied some already: the position read
      // under this write transaction decides.
      ASSIGN_OR_RETURN(int64_t applied, ReplicaPosition(db));
      ASSIGN_OR_RETURN(bool tracking, Tracking(db));
      for (const Change& c : batch) {
        if (applied >= c.seq) continue;
        if (c.kind == "ddl") {
          RETURN_IF_ERROR(db->Exec(c.payload));
          if (tracking) {
            RETURN_IF_ERROR(db->Exec("INSERT OR IGNORE INTO _rm_touched VALUES ('', x'')"));
          }
          continue;
        }
        if (tracking) RETURN_IF_ERROR(RecordTouched(db, c.payload));
        int rc = sqlite3changeset_apply(db->raw(), static_cast<int>(c.payload.size()),
                                        const_cast<char*>(c.payload.data()), nullptr, OnConflict,
                                        nullptr);
        if (rc != SQLITE_OK) return sqlite::FromCode(rc, db->raw(), "apply changeset");
      }
      return batch.back().seq > applied ? SetReplicaPosition(db, batch.back().seq) : Status::Ok();
    }));
    pos = batch.back().seq;
    // Applied changes are no longer needed by the primary.
    RETURN_IF_ERROR(primary->WithWriteTxn(app_id, [&](Db* db) -> Status {
      ASSIGN_OR_RETURN(Stmt del, db->Prepare("DELETE FROM _rm_changelog WHERE seq <= ?"));
      return del.Bind(1, pos).Run();
    }));
  }
  return Lag(app_id, primary_region, replica_region);
}

Result<ReplicationLag> SqliteReplicator::Lag(const std::string& app_id,
                                             const std::string& primary_region,
                                             const std::string& replica_region) {
  ASSIGN_OR_RETURN(auto dbs, Resolve(primary_region, replica_region));
  auto [primary, replica] = dbs;
  ReplicationLag lag;
  lag.changes = 0;
  RETURN_IF_ERROR(replica->WithConnection(app_id, [&](Db* db) -> Status {
    ASSIGN_OR_RETURN(lag.replica_position, ReplicaPosition(db));
    return Status::Ok();
  }));
  RETURN_IF_ERROR(primary->WithConnection(app_id, [&](Db* db) -> Status {
    // sqlite_sequence keeps the highest sequence ever issued, even after the log is pruned.
    ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0), "
                                         "(SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence "
                                         "WHERE name = '_rm_changelog') "
                                         "FROM _rm_changelog WHERE seq > ?"));
    ASSIGN_OR_RETURN(bool row, q.Bind(1, lag.replica_position).Step());
    if (row) {
      lag.changes = q.Int(0);
      lag.bytes = q.Int(1);
      lag.primary_position = q.Int(2);
    }
    // The change log keeps no commit times: the age of what is pending is unknown.
    lag.seconds = lag.changes > 0 ? -1 : 0;
    return Status::Ok();
  }));
  return lag;
}

Status SqliteReplicator::Stop(const std::string& app_id, const std::string& primary_region,
                              const std::string& replica_region) {
  ASSIGN_OR_RETURN(auto dbs, Resolve(primary_region, replica_region));
  auto [primary, replica] = dbs;
  Status s = primary->SetCapture(app_id, false);
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  Status r = replica->WithWriteTxn(app_id, [](Db* db) {
    return db->Exec(
        "DELETE FROM _rm_meta WHERE key = 'replica_position'; "
        "DROP TABLE IF EXISTS _rm_touched");
  });
  if (!r.ok() && r.code() != StatusCode::kNotFound) return r;
  return Status::Ok();
}

}  // namespace regionmove
