#pragma once

#include <functional>
#include <mutex>

#include "dataplane/replicator.h"
#include "dataplane/sqlite/sqlite_database.h"

namespace regionmove {

// Replicator between SQLite app databases: the primary's change log (_rm_changelog, written by
// SqliteDatabase with the session extension) is applied to the replica with
// sqlite3changeset_apply; the replica's position lives in its _rm_meta.
class SqliteReplicator final : public Replicator {
 public:
  // Finds the SQLite database of a region; nullptr when the region has no SQLite engine.
  using Resolver = std::function<SqliteDatabase*(const std::string& region)>;
  explicit SqliteReplicator(Resolver resolve) : resolve_(std::move(resolve)) {}

  Status Start(const std::string& app_id, const std::string& primary_region,
               const std::string& replica_region) override;
  // The change log lives in the app database itself, so the copy's snapshot holds the log's
  // head as of its point: the replica continues from there.
  Status StartFromSnapshot(const std::string& app_id, const std::string& primary_region,
                           const std::string& replica_region,
                           const std::function<Status(const nlohmann::json& at)>& copy) override;
  Result<ReplicationLag> Pump(const std::string& app_id, const std::string& primary_region,
                              const std::string& replica_region) override;
  Result<ReplicationLag> Lag(const std::string& app_id, const std::string& primary_region,
                             const std::string& replica_region) override;
  Result<DigestScope> Changed(const std::string& app_id, const std::string& primary_region,
                              const std::string& replica_region) override;
  Status Stop(const std::string& app_id, const std::string& primary_region,
              const std::string& replica_region) override;

 private:
  Result<std::pair<SqliteDatabase*, SqliteDatabase*>> Resolve(const std::string& primary,
                                                              const std::string& replica);
  std::mutex pump_mu_;  // one applier at a time in this process
  Resolver resolve_;
};

}  // namespace regionmove
