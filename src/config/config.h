#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace regionmove {

struct EngineConfig {
  std::string engine;  // "sqlite" | "postgres" | "fs" | "s3"
  std::string dir;     // resolved absolute path for file-based engines; s3: its local index
  std::string dsn;     // postgres
  // s3: where objects go. Credentials default to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
  std::string endpoint = "";  // "http://127.0.0.1:9000"
  std::string bucket = "";
  std::string region = "us-east-1";  // the signing region
  std::string prefix = "";           // before every object name ("" or ending in "/")
  std::string access_key_id = "";
  std::string secret_access_key = "";
  bool path_style = true;  // http://endpoint/bucket/key (false: http://bucket.endpoint/key)
};

struct RegionConfig {
  std::string slug;
  std::string name;
  std::string status = "available";  // available | draining | offline
  int64_t max_apps = 1000;
  int64_t max_bytes = 100LL << 30;
  // Where the platform's edge sends this region's traffic ("10.0.1.5:8080", or an nginx
  // upstream name): published by the routing feed, rendered by `regionmove edge nginx`.
  std::string upstream;
  EngineConfig database;
  EngineConfig blobs;
};

struct UserConfig {
  std::string name;
  std::string token_sha256;  // hex; computed from `token` when the file gives a plain token
  bool admin = false;
  std::string role;  // "" or "edge" (may read the routing feed)
};

// A receiver of webhook events (SPEC §7): POSTed signed JSON, at least once, in order per app.
struct WebhookConfig {
  std::string name;  // the key of its deliveries; defaults to the url
  std::string url;
  std::string secret;                       // HMAC-SHA256 key of the signature header
  std::vector<std::string> events = {"*"};  // glob patterns of event types
  int64_t timeout_ms = 10000;               // one attempt
  int64_t min_backoff_ms = 1000;            // the first retry's wait; doubles per attempt
  int64_t max_backoff_ms = 600000;
  int64_t give_up_after_seconds = 86400;  // from the event's creation
};

// Every type of event a webhook can receive.
const std::vector<std::string>& WebhookEventTypes();

// The whole configuration file (SPEC §9). Paths are resolved against the file's directory
// (the current directory for the embedded default) and then against data_dir.
struct Config {
  std::string source = "<embedded default>";
  std::string listen = "127.0.0.1:8080";
  std::string data_dir;  // absolute
  int64_t max_body_bytes = 64LL << 20;
  int64_t max_blob_bytes = 5LL << 30;  // a blob PUT's body (streamed, not held in memory)
  // A write that arrives while an online move pauses the app's writes waits this long for the
  // pause to end before it is answered 503 (0: answered at once).
  int64_t buffer_writes_seconds = 5;
  int max_connections = 256;        // open HTTP connections; more are answered 503
  int header_timeout_seconds = 10;  // request line and headers must arrive within this
  int idle_timeout_seconds = 5;     // a kept-alive connection without a request is closed
  // The longest Retry-After a write refused during a move's pause is told to wait.
  int64_t max_retry_after_seconds = 300;
  // Requests whose Host is <subdomain>.<apps_domain> (or an app's custom domain) reach that app.
  std::string apps_domain = "apps.localhost";

  std::string control_store_engine = "sqlite";
  std::string control_store_path;             // absolute, sqlite
  std::string control_store_dsn;              // postgres
  int64_t control_store_max_connections = 8;  // postgres: per process

  int workers = 4;
  int max_attempts = 5;
  int lease_seconds = 30;
  int max_concurrent = 16;
  int max_concurrent_per_region = 4;
  std::string default_strategy = "offline";  // of a move that names none: offline | online
  // An online move whose write pause lasts longer than this before its flip gives the app back
  // to its source and syncs again (at most kMaxBlockAttempts pauses, then it fails).
  int64_t block_budget_seconds = 10;
  // An online move pauses writes only when the catch-up it predicts for the pause (from the
  // measured apply rate) and the replica's lag are both under this.
  int64_t max_block_seconds = 2;

  int retention_days = 0;
  double price_per_gb_month_usd = 0.50;

  std::string secrets_key_file;  // absolute

  std::vector<UserConfig> users;
  std::vector<RegionConfig> regions;
  std::vector<WebhookConfig> webhooks;

  const RegionConfig* FindRegion(const std::string& slug) const;
};

// The embedded default: three regions under ./var, users alice, bob and an admin.
std::string_view EmbeddedDefaultConfigToml();

// Parses and validates a configuration. The text holds only what it changes: keys it leaves
// out keep the embedded default's values, and [[users]] or [[regions]] it gives replace the
// default lists whole. `base_dir` resolves relative paths. InvalidArgument naming the key (and
// its line) for anything wrong, unknown sections and keys included.
Result<Config> ParseConfig(std::string_view toml_text, const std::string& base_dir,
                           const std::string& source_name);
// Reads FILE, or the embedded default (relative to the current directory) when path is empty.
Result<Config> LoadConfig(const std::string& path);

}  // namespace regionmove
