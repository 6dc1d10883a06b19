#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "dataplane/database.h"
#include "dataplane/postgres/pg_engine.h"

namespace regionmove {

// The sequences of an app database (schema, name), in a stable order.
extern const char* const kPgSequences;
// Sets every sequence of `to` to its value in `from` (databases of the same schema).
Status CopySequenceValues(pg::Conn* from, pg::Conn* to);
// Creates or brings up to date the _regionmove schema of an app database (idempotent; one
// query when it is current).
Status EnsureInternalSchema(pg::Conn* c, const std::string& app_id);
// Inside the caller's transaction: Conflict("fenced") if `table` (app_id text primary key,
// token bigint) holds a later token for the app, else records `token` there (row-locked until
// the transaction ends). Token 0 checks nothing.
Status TakeFenceToken(pg::Conn* c, const std::string& table, const std::string& app_id,
                      int64_t token);

// The app databases of one PostgreSQL region (see PgEngine). Each app database carries a
// schema `_regionmove`: `meta` (region-local: the fence), `fence_tokens` (region-local) and
// `columns` (the data API's column types, copied and replicated like the app's tables).
//
// The write fence: a `fenced` row in _regionmove.meta that every data API write reads FOR
// SHARE in its own transaction (so Fence() waits for the writes in flight); a statement
// trigger `_regionmove_fence` on every table of the app's schemas that refuses INSERT, UPDATE,
// DELETE and TRUNCATE from any session (SQLSTATE 25006), created under each table's lock so
// that writes in flight finish first; the database default `default_transaction_read_only =
// on` for new sessions; and the end of the sessions other clients held open. Reads keep
// working, and logical replication still applies to a fenced replica (its apply does not fire
// ordinary triggers). Only a table's owner or a superuser can undo it (docs/postgres.md).
class PgDatabase final : public Database {
 public:
  PgDatabase(const PgEngine* engine, const RegionConfig& region, Rng* rng);

  const char* engine() const override { return "postgres"; }
  Status Create(const std::string& app_id) override;
  Status Drop(const std::string& app_id, int64_t token = 0) override;
  Result<bool> Exists(const std::string& app_id) override;
  Result<int64_t> SizeBytes(const std::string& app_id) override;
  // Sizes of many apps measured within the last kSizesMaxAgeMs are reused (a region's usage
  // and the apps list ask for every app of the region); SizeBytes always measures.
  Result<std::map<std::string, int64_t>> SizesBytes(
      const std::vector<std::string>& app_ids) override;
  static constexpr int64_t kSizesMaxAgeMs = 10'000;
  Status Fence(const std::string& app_id) override;
  Status Unfence(const std::string& app_id, int64_t token = 0) override;
  Result<bool> IsFenced(const std::string& app_id) override;
  Status WithWriteFence(const std::string& app_id, const std::function<Status()>& fn) override;
  Result<std::vector<std::string>> MissingForCopy(const std::string& app_id,
                                                  const std::string& dest_region) override;
  // ExportCopy writes `<stage>.pre.sql` and `<stage>.post.sql` (pg_dump's sections);
  // ImportCopy recreates the database, runs pre-data, copies every table with binary COPY
  // streams from the source (two at a time), sets the sequences, runs post-data and fences.
  Result<nlohmann::json> ExportCopy(const std::string& app_id, const std::string& stage,
                                    const ProgressFn& progress,
                                    const nlohmann::json& at = nullptr) override;
  Status ImportCopy(const std::string& app_id, const std::string& source_region,
                    const nlohmann::json& state, const ProgressFn& progress,
                    int64_t token = 0) override;
  // Every table (row count; checksum: the sum of a 64-bit hash of each row, computed by the
  // server with the columns' hash functions, or of the row's text form for a table with a
  // column type that has none), every sequence (value), and the schema (SHA-256 of pg_dump
  // --schema-only without comments).
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

 private:
  // Digest, read as of `snapshot` (an exported snapshot) when it is not empty.
  Result<std::vector<TableDigest>> DigestAt(const std::string& app_id, const std::string& snapshot,
                                            const DigestScope& scope);
  // Runs `fn` in a transaction on the app's database after checking (FOR SHARE) that it is
  // not fenced: Unavailable("app_migrating") when it is.
  Status Write(const std::string& app_id, const std::function<Status(pg::Conn*)>& fn);
  Status Read(const std::string& app_id, const std::function<Status(pg::Conn*)>& fn);
  // A pooled connection to the app's database that answers, whose _regionmove schema exists.
  Result<PgPool::Handle> Live(const std::string& app_id);
  Status EnsureInternal(pg::Conn* c, const std::string& app_id);
  // Serialises destructive actions on one app database across processes (an advisory lock
  // held by `admin` until it is released or the connection ends).
  Status LockApp(pg::Conn* admin, const std::string& app_id);
  Status UnlockApp(pg::Conn* admin, const std::string& app_id);
  // Conflict("fenced") when a later migration's token has acted on the database.
  Status CheckToken(const std::string& app_id, int64_t token);
  Status DropLocked(pg::Conn* admin, const std::string& app_id);
  std::string Where(const std::string& app_id) const;

  const PgEngine* engine_;
  RegionConfig region_;
  Rng* rng_;
  PgPool pool_;
  std::mutex mu_;
  std::set<std::string> prepared_;  // app databases known to have the _regionmove schema
  // SizesBytes' answers, by app: (bytes, steady-clock ms measured). pg_database_size stats
  // every file of a database, catalogs included: a few hundred per database, about 1 ms each.
  std::map<std::string, std::pair<int64_t, int64_t>> sizes_;
};

}  // namespace regionmove
