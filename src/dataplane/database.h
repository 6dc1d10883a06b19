#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/ids.h"
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

// InvalidArgument unless the table's and columns' names are valid identifiers, none repeated,
// and every type is one of kColumnTypes.
Status ValidateTableSpec(const TableSpec& spec);
// InvalidArgument unless `v` (null, or the JSON form of a value) fits the column's type.
Status CheckValue(const ColumnSpec& col, const nlohmann::json& v);

// The column named `name`, or nullptr.
const ColumnSpec* FindColumn(const std::vector<ColumnSpec>& cols, const std::string& name);
// Prepares one row for an insert into `table` with columns `cols`: InvalidArgument unless it
// is an object whose keys are columns (or `id`) and whose values fit them; gives it a new
// UUID `id` when it has none (validated otherwise) and null for the columns it lacks.
Status NormalizeRow(const std::string& table, const std::vector<ColumnSpec>& cols, Rng& rng,
                    nlohmann::json* row);

// One entry of a database's digest, in engine-neutral form: a table (its row count and a
// checksum of its content), or another named part the engine compares (a sequence's value, the
// schema). Both sides of a move must produce equal digests or the move stops before its flip.
struct TableDigest {
  std::string table;  // "schema.table" or the table name; "sequence ...", "schema" for the rest
  int64_t rows = 0;
  std::string checksum;
  // Whether this is a table of the app's (its rows are the app's data), rather than one the
  // engine keeps for itself (the data API's column catalog) or another part of the schema.
  bool app_table = true;
  bool operator==(const TableDigest&) const = default;
};

// The JSON form of a digest (an array of {table, rows, checksum, app_table}), and back.
nlohmann::json DigestToJson(const std::vector<TableDigest>& digest);
Result<std::vector<TableDigest>> DigestFromJson(const nlohmann::json& j);

// What a digest covers: by default every row of every table. A partial digest (whole = false)
// covers the rows with the listed primary keys (engine-encoded, as Replicator::Changed gives
// them; a key that names no row counts as absent on both sides alike), the listed tables whole,
// and the parts of the database that are not rows (the schema, sequence values), which are
// small. An online move's pause compares a partial digest of what its change stream touched.
struct DigestScope {
  bool whole = true;
  std::map<std::string, std::vector<std::string>> keys;  // table -> sorted keys
  std::set<std::string> tables;
  int64_t key_count() const {
    int64_t n = 0;
    for (const auto& [table, k] : keys) n += static_cast<int64_t>(k.size());
    return n;
  }
};

// The app databases of one region. Every app has at most one database per region. Rows are
// JSON objects keyed by column name; `bytes` columns travel as base64 strings.
// Thread-safe. Writes are refused with Unavailable("app_migrating") while the database is
// fenced; once Fence() returns, no write can commit until Unfence(), from any process.
class Database {
 public:
  virtual ~Database() = default;

  // The engine's name ("sqlite", "postgres"): databases copy and replicate only between
  // regions of the same engine.
  virtual const char* engine() const = 0;

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
  // SizeBytes of many apps at once: every one of `app_ids` is in the answer (0 for what is not
  // there). By default one SizeBytes each; engines that can answer for all in one query do
  // (a region's usage sums every app of the region).
  virtual Result<std::map<std::string, int64_t>> SizesBytes(
      const std::vector<std::string>& app_ids);
  virtual Status Fence(const std::string& app_id) = 0;
  virtual Status Unfence(const std::string& app_id, int64_t token = 0) = 0;
  virtual Result<bool> IsFenced(const std::string& app_id) = 0;
  // Runs `fn` (a write of the app outside this database: a blob, a runtime row) under the
  // app's write fence: Unavailable("app_migrating") without running it when fenced, and a
  // concurrent Fence() waits until it has finished. So a move's drain covers those writes too.
  virtual Status WithWriteFence(const std::string& app_id, const std::function<Status()>& fn) = 0;
  // ---- copying an app database between two regions of this engine ----
  // What `dest_region` lacks for a copy of the app's database here (PostgreSQL: the roles its
  // grants, policies and owners name, the extensions it uses), one line each; empty when
  // nothing. Part of a move's eligibility checks.
  virtual Result<std::vector<std::string>> MissingForCopy(const std::string& app_id,
                                                          const std::string& dest_region) {
    (void)app_id, (void)dest_region;
    return std::vector<std::string>{};
  }
  // Two resumable phases, run by the saga's dumping_data and restoring_data steps (each may be
  // run again after a crash; the state between them is data the saga keeps):
  //   ExportCopy, on the source (fenced, so what it reads is final; or unfenced, reading as of
  //     the point `at` that Replicator::StartFromSnapshot gives, null otherwise): stages what
  //     the copy needs under paths starting with `stage` (the engine's choice: a compressed
  //     snapshot, a schema script) and returns the copy's state as JSON. Given `at`, the state
  //     also holds, under "digest" (DigestToJson), the whole digest of the source as of that
  //     point, which the copy in the destination must equal before it replicates anything;
  //   ImportCopy, on the destination: replaces the app's database here with the source's
  //     content, from the staged files or read straight from `source_region`'s database. The
  //     copy stays fenced until Unfence(). The saga deletes the staged files afterwards.
  virtual Result<nlohmann::json> ExportCopy(const std::string& app_id, const std::string& stage,
                                            const ProgressFn& progress,
                                            const nlohmann::json& at = nullptr) = 0;
  virtual Status ImportCopy(const std::string& app_id, const std::string& source_region,
                            const nlohmann::json& state, const ProgressFn& progress,
                            int64_t token = 0) = 0;
  // The digest compared after a copy and a fast reverse: every table including the column
  // catalog, in a stable order; or the part of it that `scope` names.
  virtual Result<std::vector<TableDigest>> Digest(const std::string& app_id,
                                                  const DigestScope& scope = {}) = 0;

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
