#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace regionmove {

// Called by long operations with (bytes done, bytes total); a non-ok return stops the operation
// and is returned by it (this is how a stop token reaches a copy loop).
using ProgressFn = std::function<Status(int64_t done, int64_t total)>;

// Column types of the app data API.
inline constexpr const char* kColumnTypes[] = {"text", "integer",   "real", "boolean",
                                               "json", "timestamp", "bytes"};
bool IsValidColumnType(std::string_view type);
// [A-Za-z_][A-Za-z0-9_]{0,62}, not reserved (id, and names starting with "_rm_" or "sqlite_").
bool IsValidIdentifier(std::string_view name);

struct ColumnSpec {
  std::string name;
  std::string type;
};
struct TableSpec {
  std::string name;
  std::vector<ColumnSpec> columns;  // excluding the implicit text primary key `id`
  int64_t row_count = 0;
};

// A staged consistent dump of one app database.
struct DumpArtifact {
  std::string path;
  int64_t size_bytes = 0;  // of the (compressed) artifact
  int64_t raw_bytes = 0;   // of the database it holds
  std::string sha256;      // of the artifact
};

// Row count and content checksum of one table: equal on both sides or the move stops.
struct TableDigest {
  std::string table;
  int64_t rows = 0;
  std::string checksum;
  bool operator==(const TableDigest&) const = default;
};

// The app databases of one region. Every app has at most one database per region. Rows are
// JSON objects keyed by column name; `bytes` columns travel as base64 strings.
// Thread-safe. Writes are refused with Unavailable("app_migrating") while the database is
// fenced; once Fence() returns, no write can commit until Unfence(), from any process.
class Database {
 public:
  virtual ~Database() = default;

  // ---- lifecycle (used by the saga) ----
  // Fencing tokens: the destructive actions below take the epoch of the migration acting
  // (globally increasing, see ControlStore::ClaimNext). The database keeps the highest token
  // that has acted on it and refuses a lower one with Conflict("fenced"), checked under the lock
  // the action takes: a worker that was paused past its lease cannot clobber what a later one
  // did. Token 0 skips the check, for callers serialised by other means (app creation,
  // teardown, which holds the app's operation slot).
  virtual Status Create(const std::string& app_id) = 0;                   // idempotent
  virtual Status Drop(const std::string& app_id, int64_t token = 0) = 0;  // idempotent
  virtual Result<bool> Exists(const std::string& app_id) = 0;
  virtual Result<int64_t> SizeBytes(const std::string& app_id) = 0;
  virtual Status Fence(const std::string& app_id) = 0;
  virtual Status Unfence(const std::string& app_id, int64_t token = 0) = 0;
  virtual Result<bool> IsFenced(const std::string& app_id) = 0;
  // Runs `fn` (a write of the app outside this database: a blob, a runtime row) under the
  // app's write fence: Unavailable("app_migrating") without running it when fenced, and a
  // concurrent Fence() waits until it has finished. So a move's drain covers those writes too.
  virtual Status WithWriteFence(const std::string& app_id, const std::function<Status()>& fn) = 0;
  // Consistent dump of schema and data into a compressed artifact at `path`.
  virtual Result<DumpArtifact> Dump(const std::string& app_id, const std::string& path,
                                    const ProgressFn& progress) = 0;
  // Replaces the app's database here with the artifact's content (checksum verified first).
  // The restored database stays fenced until Unfence().
  virtual Status Restore(const std::string& app_id, const DumpArtifact& artifact,
                         const ProgressFn& progress, int64_t token = 0) = 0;
  // Per-table row counts and checksums, every table including the column catalog.
  virtual Result<std::vector<TableDigest>> Digest(const std::string& app_id) = 0;

  // ---- app data API ----
  virtual Status CreateTable(const std::string& app_id, const TableSpec& spec) = 0;
  virtual Result<std::vector<TableSpec>> ListTables(const std::string& app_id) = 0;
  // Inserts rows (ids generated when absent); returns them as stored.
  virtual Result<nlohmann::json> InsertRows(const std::string& app_id, const std::string& table,
                                            const nlohmann::json& rows) = 0;
  virtual Result<nlohmann::json> GetRow(const std::string& app_id, const std::string& table,
                                        const std::string& id) = 0;
  virtual Result<nlohmann::json> UpdateRow(const std::string& app_id, const std::string& table,
                                           const std::string& id, const nlohmann::json& patch) = 0;
  virtual Status DeleteRow(const std::string& app_id, const std::string& table,
                           const std::string& id) = 0;
  // Keyset page by id: rows with id > after, at most `limit`.
  virtual Result<nlohmann::json> ListRows(const std::string& app_id, const std::string& table,
                                          const std::string& after, int limit) = 0;
};

}  // namespace regionmove
