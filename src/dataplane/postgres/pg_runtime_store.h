#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/pg.h"
#include "common/secret_box.h"
#include "dataplane/runtime_store.h"

namespace regionmove {

// RuntimeStore in a database of the region's PostgreSQL cluster (`regionmove_runtime`, created
// when missing), with the tables and keys of the embedded store: each row has an `archived`
// flag in its key, secret env values are sealed with the SecretBox, and a `fence_tokens` table
// keeps the latest migration token per app. One connection, serialised, reopened when lost.
class PgRuntimeStore final : public RuntimeStore {
 public:
  static constexpr const char* kDatabase = "regionmove_runtime";
  // `admin`: conninfo of the cluster's maintenance database (to create the runtime database);
  // `conninfo`: of the runtime database; `where`: the region, for messages.
  static Result<std::unique_ptr<PgRuntimeStore>> Open(const std::string& admin,
                                                      const std::string& conninfo,
                                                      const std::string& where,
                                                      const SecretBox* secrets);

  Status PutFunction(const std::string& app_id, const FunctionDef& f) override;
  Status PutEnv(const std::string& app_id, const EnvVar& e) override;
  Status PutCron(const std::string& app_id, const CronTrigger& c) override;
  Status PutDomain(const std::string& app_id, const std::string& host) override;
  Status Delete(const std::string& app_id, const std::string& kind,
                const std::string& name) override;
  Result<RuntimeSnapshot> Snapshot(const std::string& app_id, bool archived) override;
  Status ReplaceLive(const std::string& app_id, const RuntimeSnapshot& snapshot) override;
  Status SetArchived(const std::string& app_id, bool archived) override;
  Status DeleteAll(const std::string& app_id, Which which, int64_t token = 0) override;

 private:
  PgRuntimeStore(std::string conninfo, std::string where, const SecretBox* secrets)
      : conninfo_(std::move(conninfo)), where_(std::move(where)), secrets_(secrets) {}
  // Runs `fn` on the connection (reopened first if it was lost), under the store's lock.
  Status With(const std::function<Status(pg::Conn*)>& fn);
  Status PutFunctionOn(pg::Conn* c, const std::string& app_id, const FunctionDef& f);
  Status PutEnvOn(pg::Conn* c, const std::string& app_id, const EnvVar& e);
  Status PutCronOn(pg::Conn* c, const std::string& app_id, const CronTrigger& t);
  Status PutDomainOn(pg::Conn* c, const std::string& app_id, const std::string& host);

  std::string conninfo_, where_;
  const SecretBox* secrets_;
  std::mutex mu_;
  std::unique_ptr<pg::Conn> conn_;
};

}  // namespace regionmove
