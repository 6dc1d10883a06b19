#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "common/secret_box.h"

namespace regionmove {

struct FunctionDef {
  std::string name;
  int64_t version = 1;
  std::string entrypoint;
  std::string runtime;
  std::string bundle;  // the code, kept as a binary blob
};
struct EnvVar {
  std::string key;
  std::string value;  // plaintext in memory; encrypted at rest when secret
  bool secret = false;
};
struct CronTrigger {
  std::string name;
  std::string schedule;  // 5-field cron
  std::string function;
};

// Everything of an app's runtime in one region.
struct RuntimeSnapshot {
  std::vector<FunctionDef> functions;
  std::vector<EnvVar> env;
  std::vector<CronTrigger> cron;
  std::vector<std::string> domains;
  bool operator==(const RuntimeSnapshot&) const;
};

// The kinds of runtime rows (Delete's `kind`), each a table of the stores, and the column that
// names a row of each.
inline constexpr const char* kRuntimeKinds[] = {"functions", "env", "cron", "domains"};
inline constexpr const char* kRuntimeKeyColumns[] = {"name", "key", "name", "host"};

// Ok for a valid 5-field cron schedule; InvalidArgument naming the bad field otherwise.
Status ValidateCron(std::string_view schedule);

// A secret env var's value as stored (sealed, bound to its app and name), and back.
Result<std::string> SealSecretEnv(const SecretBox& box, const std::string& app_id, const EnvVar& e);
Result<std::string> OpenSecretEnv(const SecretBox& box, const std::string& app_id,
                                  const EnvVar& stored);

// Functions, env vars, cron triggers and custom domains of the apps of one region. Rows are
// either live or archived (kept after a move for a fast reverse, not served). Thread-safe.
class RuntimeStore {
 public:
  virtual ~RuntimeStore() = default;

  virtual Status PutFunction(const std::string& app_id, const FunctionDef& f) = 0;
  virtual Status PutEnv(const std::string& app_id, const EnvVar& e) = 0;
  virtual Status PutCron(const std::string& app_id, const CronTrigger& c) = 0;
  virtual Status PutDomain(const std::string& app_id, const std::string& host) = 0;
  // kind is "functions" | "env" | "cron" | "domains". NotFound when absent.
  virtual Status Delete(const std::string& app_id, const std::string& kind,
                        const std::string& name) = 0;
  // Live rows (archived = false) or archived rows (archived = true).
  virtual Result<RuntimeSnapshot> Snapshot(const std::string& app_id, bool archived) = 0;
  // Replaces the app's live rows here with `snapshot` (one transaction).
  virtual Status ReplaceLive(const std::string& app_id, const RuntimeSnapshot& snapshot) = 0;
  // Marks all of the app's live rows archived, or all archived rows live again.
  virtual Status SetArchived(const std::string& app_id, bool archived) = 0;
  // Deletes the app's rows: live, archived, or both.
  enum class Which { kLive, kArchived, kAll };
  // `token`: the acting migration's fencing token, as Database::Drop takes it (0: unchecked).
  virtual Status DeleteAll(const std::string& app_id, Which which, int64_t token = 0) = 0;
};

}  // namespace regionmove
