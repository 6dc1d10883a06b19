#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/pg.h"
#include "dataplane/engines.h"

namespace regionmove {

class PgDatabase;

// The PostgreSQL engine: each region is a PostgreSQL cluster (`database.dsn`, whose database
// is the maintenance database regionmove connects to first), and each app is a database of
// that cluster named after its app id, holding whatever schema the app's services created.
// A copy is the schema from pg_dump (pre-data before the data, post-data after) and the data
// through parallel COPY streams; replication is a publication on the primary and a
// subscription on the replica (docs/postgres.md).
class PgEngine final : public DatabaseEngine {
 public:
  static Result<std::unique_ptr<DatabaseEngine>> Make(const EngineEnv& env);
  ~PgEngine() override;

  Result<std::unique_ptr<Database>> OpenDatabase(const RegionConfig& region) override;
  // The runtime store: database `regionmove_runtime` of the region's cluster (PgRuntimeStore).
  Result<std::unique_ptr<RuntimeStore>> OpenRuntime(const RegionConfig& region) override;
  Replicator* replicator() override { return replicator_.get(); }

  // The conninfo of `dbname` in `region`'s cluster (any region of the config that runs
  // PostgreSQL, opened or not).
  Result<std::string> ConninfoFor(const std::string& region, const std::string& dbname) const;

 private:
  explicit PgEngine(const EngineEnv& env);
  EngineEnv env_;
  std::unique_ptr<Replicator> replicator_;
};

// Connections to the databases of one cluster, a few kept open per database.
class PgPool {
 public:
  PgPool(const PgEngine* engine, std::string region)
      : engine_(engine), region_(std::move(region)) {}

  class Handle {
   public:
    Handle(PgPool* pool, std::string db, std::unique_ptr<pg::Conn> c)
        : pool_(pool), db_(std::move(db)), c_(std::move(c)) {}
    Handle(Handle&&) = default;
    ~Handle() {
      if (c_) pool_->Return(db_, std::move(c_));
    }
    pg::Conn* operator->() { return c_.get(); }
    pg::Conn* get() { return c_.get(); }

   private:
    PgPool* pool_;
    std::string db_;
    std::unique_ptr<pg::Conn> c_;
  };

  // A connection to database `db` (the maintenance database when empty).
  Result<Handle> Get(const std::string& db = "");
  // Closes the idle connections to `db` (before it is dropped or replaced).
  void Forget(const std::string& db);
  const std::string& region() const { return region_; }

 private:
  void Return(const std::string& db, std::unique_ptr<pg::Conn> c);
  static constexpr size_t kIdlePerDb = 4;
  static constexpr size_t kIdleTotal = 64;
  const PgEngine* engine_;
  std::string region_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<pg::Conn>>> idle_;
  size_t idle_count_ = 0;
};

}  // namespace regionmove
