#pragma once

#include <memory>
#include <mutex>

#include "common/secret_box.h"
#include "common/sqlite.h"
#include "dataplane/runtime_store.h"

namespace regionmove {

// RuntimeStore in one SQLite database per region (`<dir>/_runtime.sqlite3`). Each row has an
// `archived` flag that is part of its key, so an app can hold live rows and the archived rows
// of an earlier move side by side. Secret env values are sealed with the SecretBox.
class SqliteRuntimeStore final : public RuntimeStore {
 public:
  static Result<std::unique_ptr<SqliteRuntimeStore>> Open(const std::string& dir,
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
  SqliteRuntimeStore(std::unique_ptr<sqlite::Db> db, const SecretBox* secrets)
      : db_(std::move(db)), secrets_(secrets) {}
  Status PutFunctionLocked(const std::string& app_id, const FunctionDef& f);
  Status PutEnvLocked(const std::string& app_id, const EnvVar& e);
  Status PutCronLocked(const std::string& app_id, const CronTrigger& c);
  Status PutDomainLocked(const std::string& app_id, const std::string& host);
  Status DeleteLocked(const std::string& app_id, int archived);

  std::mutex mu_;
  std::unique_ptr<sqlite::Db> db_;
  const SecretBox* secrets_;
};

}  // namespace regionmove
