#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/ids.h"
#include "common/sqlite.h"
#include "dataplane/database.h"

namespace regionmove {

// Database on SQLite: one file per app (`<dir>/<app_id>.sqlite3`), WAL mode.
//
// Every app database carries three internal tables:
//   _rm_meta      key/value: `fenced`, `capture`, `replica_position` (region-local, never copied
//                 by replication);
//   _rm_changelog the change log of a primary whose writes are captured for a replica;
//   _rm_columns   the logical column types of the data API (replicated like user data).
// The fence is a row in _rm_meta read inside every write transaction (BEGIN IMMEDIATE), so once
// Fence() commits no write commits, from this process or any other.
// When `capture` is on, each write transaction records its changes with the SQLite session
// extension and appends the changeset to _rm_changelog in the same transaction.
class SqliteDatabase final : public Database {
 public:
  // Open connections kept (each holds a file descriptor or three): the least recently used
  // one goes when a new one would exceed this, as leveldb's table cache does.
  static constexpr size_t kMaxOpenConns = 256;
  // A database up to this size is dumped through memory rather than a scratch file.
  static constexpr int64_t kInMemoryDumpBytes = int64_t{16} << 20;

  static Result<std::unique_ptr<SqliteDatabase>> Open(const std::string& dir, Rng* rng);
  ~SqliteDatabase() override;

  Status Create(const std::string& app_id) override;
  Status Drop(const std::string& app_id, int64_t token = 0) override;
  Result<bool> Exists(const std::string& app_id) override;
  Result<int64_t> SizeBytes(const std::string& app_id) override;
  Status Fence(const std::string& app_id) override;
  Status Unfence(const std::string& app_id, int64_t token = 0) override;
  Result<bool> IsFenced(const std::string& app_id) override;
  Status WithWriteFence(const std::string& app_id, const std::function<Status()>& fn) override;
  const char* engine() const override { return "sqlite"; }
  // The copy is a compressed snapshot file, `<stage>.db.zst`, with its SHA-256 (Dump), that
  // the destination checks and installs by one atomic rename (Restore).
  Result<nlohmann::json> ExportCopy(const std::string& app_id, const std::string& stage,
                                    const ProgressFn& progress,
                                    const nlohmann::json& at = nullptr) override;
  Status ImportCopy(const std::string& app_id, const std::string& source_region,
                    const nlohmann::json& state, const ProgressFn& progress,
                    int64_t token = 0) override;
  Result<std::vector<TableDigest>> Digest(const std::string& app_id,
                                          const DigestScope& scope = {}) override;

  Status CreateTable(const std::string& app_id, const TableSpec& spec) override;
  Result<std::vector<TableSpec>> ListTables(const std::string& app_id) override;
  Result<nlohmann::json> InsertRows(const std::string& app_id, const std::string& table,
                                    const nlohmann::json& rows) override;
  Result<nlohmann::json> GetRow(const std::string& app_id, const std::string& table,
                                const std::string& id) override;
  Result<nlohmann::json> UpdateRow(const std::string& app_id, const std::string& table,
                                   const std::string& id, const nlohmann::json& patch) override;
  Status DeleteRow(const std::string& app_id, const std::string& table,
                   const std::string& id) override;
  Result<nlohmann::json> ListRows(const std::string& app_id, const std::string& table,
                                  const std::string& after, int limit) override;

  // A staged consistent dump of one app database.
  struct DumpArtifact {
    std::string path;
    int64_t size_bytes = 0;  // of the (compressed) artifact
    int64_t raw_bytes = 0;   // of the database it holds
    std::string sha256;      // of the artifact
  };
  // Consistent dump of schema and data into a compressed artifact at `path`; with `digest`,
  // also the whole digest of what it dumped, read in the same transaction.
  Result<DumpArtifact> Dump(const std::string& app_id, const std::string& path,
                            const ProgressFn& progress, std::vector<TableDigest>* digest = nullptr);
  // Replaces the app's database here with the artifact's content (checksum verified first).
  Status Restore(const std::string& app_id, const DumpArtifact& artifact,
                 const ProgressFn& progress, int64_t token = 0);

  // ---- for the SQLite replicator ----
  // The replica's record of the rows a replication started from a snapshot has changed
  // (Replicator::Changed): (tbl, key) with key encoded by AppendValue, one value per key column
  // in table order; tbl "" for a change that is not to rows. Region-local.
  static constexpr const char* kTouchedTable = "_rm_touched";
  // Appends one value in the digest's serialisation (a type tag, then the bytes).
  static void AppendValue(std::string* out, sqlite3_value* v);
  std::string PathFor(const std::string& app_id) const;
  // Turns change capture on or off (off also empties the change log).
  Status SetCapture(const std::string& app_id, bool on);
  // Runs `fn` on the app's connection inside a write transaction that ignores the fence (the
  // replicator applying changes to a replica). Not captured.
  Status WithWriteTxn(const std::string& app_id, const std::function<Status(sqlite::Db*)>& fn);
  // Runs `fn` on the app's connection without a transaction (reads).
  Status WithConnection(const std::string& app_id, const std::function<Status(sqlite::Db*)>& fn);
  // Connections cached now (at most kMaxOpenConns).
  size_t open_connections();

 private:
  // One app's connection. Writes share transactions (group commit): each runs in a savepoint of
  // the batch open on the connection, and the last writer of a batch (none waiting for `mu`, or
  // the batch full) commits it for all, one fsync for the lot, while the others wait for that.
  // Everything else that takes `mu` waits until no batch is open (LockIdle).
  struct Conn {
    std::mutex mu;
    std::condition_variable batch_done;  // a batch committed or rolled back
    std::atomic<int> arriving{0};        // writers waiting for `mu`: they join the open batch
    bool batch_open = false;             // guarded by mu
    int batch_size = 0;                  // writes in the open batch
    int64_t batch_id = 0, done_id = 0;   // the open (or last) batch; the last one finished
    std::map<int64_t, Status> failed;    // the latest batches whose commit failed
    std::unique_ptr<sqlite::Db> db;
    uint64_t inode = 0;      // of the file when opened: another process may replace or drop it
    uint64_t last_used = 0;  // tick of the cache's clock, for LRU eviction
  };
  // Locks `conn.mu` once no batch of writes is open on it.
  static std::unique_lock<std::mutex> LockIdle(Conn& conn);
  enum class Fenced { kRespect, kIgnore };

  SqliteDatabase(std::string dir, Rng* rng) : dir_(std::move(dir)), rng_(rng) {}
  Result<std::shared_ptr<Conn>> GetConn(const std::string& app_id);
  void ForgetConn(const std::string& app_id);
  // A write transaction: refuses when fenced (unless kIgnore), captures changes when on.
  // `ddl` (if any) is logged before the changeset so a replica can replay schema changes.
  Status Write(const std::string& app_id, Fenced fenced,
               const std::function<Status(sqlite::Db*, std::string* ddl)>& fn);
  // Write's work inside its savepoint of the batch.
  static Status WriteInSavepoint(sqlite::Db* db, const std::string& app_id, Fenced fenced,
                                 const std::function<Status(sqlite::Db*, std::string* ddl)>& fn);
  Result<std::vector<ColumnSpec>> Columns(sqlite::Db* db, const std::string& table);
  // The bytes of an empty app database (WAL mode, the internal schema), made once.
  // REQUIRES: mu_.
  Result<const std::string*> EmptyImage();
  static Result<std::vector<TableDigest>> DigestOn(sqlite::Db* db, const DigestScope& scope);

  std::string dir_;
  Rng* rng_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Conn>> conns_;
  uint64_t tick_ = 0;
  std::string empty_image_;  // EmptyImage(), once made
};

}  // namespace regionmove
