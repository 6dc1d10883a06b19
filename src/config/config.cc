#include "config/config.h"

#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/hash.h"
#include "common/ids.h"
#include "common/text.h"

namespace regionmove {

namespace fs = std::filesystem;

std::string_view EmbeddedDefaultConfigToml() {
  return R"toml(
[server]
listen = "127.0.0.1:8080"
data_dir = "var"
max_body_bytes = 67108864
max_blob_bytes = 5368709120
max_retry_after_seconds = 300

[control_store]
engine = "sqlite"
path = "control.sqlite3"

[saga]
workers = 4
max_attempts = 5
lease_seconds = 30
max_concurrent = 16
max_concurrent_per_region = 4
default_strategy = "offline"
block_budget_seconds = 10
max_block_seconds = 2

[replicas]
retention_days = 0
price_per_gb_month_usd = 0.50

[secrets]
key_file = "secret.key"

[[users]]
name = "alice"
token = "alice-dev-token"

[[users]]
name = "bob"
token = "bob-dev-token"

[[users]]
name = "admin"
token = "admin-dev-token"
admin = true

[[regions]]
slug = "us-east-1"
name = "US East (N. Virginia)"
database = { engine = "sqlite", dir = "regions/us-east-1/db" }
blobs = { engine = "fs", dir = "regions/us-east-1/blobs" }

[[regions]]
slug = "eu-west-1"
name = "EU West (Ireland)"
database = { engine = "sqlite", dir = "regions/eu-west-1/db" }
blobs = { engine = "fs", dir = "regions/eu-west-1/blobs" }

[[regions]]
slug = "ap-southeast-1"
name = "Asia Pacific (Singapore)"
database = { engine = "sqlite", dir = "regions/ap-southeast-1/db" }
blobs = { engine = "fs", dir = "regions/ap-southeast-1/blobs" }
)toml";
}

const RegionConfig* Config::FindRegion(const std::string& slug) const {
  for (const auto& r : regions) {
    if (r.slug == slug) return &r;
  }
  return nullptr;
}

namespace {

std::string Resolve(const std::string& base, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_relative()) path = fs::path(base) / path;
  return path.lexically_normal().string();
}

Status Bad(const std::string& source, const std::string& key, const std::string& what) {
  return InvalidArgument(source + ": " + key + " " + what, "invalid_config");
}

// Reads an optional key of type T, leaving `out` alone when absent.
template <typename T, typename Out>
Status Read(const toml::table& t, const char* key, Out& out, const std::string& source,
            const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  auto v = n->value<T>();
  if (!v) return Bad(source, where + key, "has the wrong type");
  out = static_cast<Out>(*v);
  return Status::Ok();
}

// Every key a configuration file may hold, by section. A key outside this list is an error:
// a typo must never fall back silently to a default.
struct SectionKeys {
  const char* section;
  std::vector<std::string> keys;
  bool array = false;  // [[section]]
};

const std::vector<SectionKeys>& Schema() {
  static const std::vector<SectionKeys> kSchema = {
      {"server",
       {"listen", "data_dir", "max_body_bytes", "max_blob_bytes", "max_retry_after_seconds",
        "apps_domain", "max_connections", "buffer_writes_seconds", "header_timeout_seconds",
        "idle_timeout_seconds"}},
      {"control_store", {"engine", "path", "dsn", "max_connections"}},
      {"saga",
       {"workers", "max_attempts", "lease_seconds", "max_concurrent", "max_concurrent_per_region",
        "default_strategy", "block_budget_seconds", "max_block_seconds"}},
      {"replicas", {"retention_days", "price_per_gb_month_usd"}},
      {"secrets", {"key_file"}},
      {"users", {"name", "token", "token_sha256", "admin", "role"}, true},
      {"regions",
       {"slug", "name", "status", "max_apps", "max_bytes", "upstream", "database", "blobs"},
       true},
      {"webhooks",
       {"name", "url", "secret", "events", "timeout_ms", "min_backoff_ms", "max_backoff_ms",
        "give_up_after_seconds"},
       true},
  };
  return kSchema;
}

std::string At(const std::string& source, const toml::node& n) {
  return n.source().begin.line > 0 ? source + ":" + std::to_string(n.source().begin.line) : source;
}

Status UnknownKeys(const toml::table& t, const std::vector<std::string>& keys,
                   const std::string& where, const std::string& source) {
  for (const auto& [k, v] : t) {
    std::string key(k.str());
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
    return InvalidArgument(At(source, v) + ": unknown key '" + SanitizeUtf8(key) + "' in " + where +
                               DidYouMean(key, keys),
                           "invalid_config");
  }
  return Status::Ok();
}

// Refuses sections and keys that no version of this file means.
Status CheckKnownKeys(const toml::table& root, const std::string& source) {
  std::vector<std::string> sections;
  for (const auto& s : Schema()) sections.push_back(s.section);
  for (const auto& [k, v] : root) {
    std::string name(k.str());
    auto it = std::find_if(Schema().begin(), Schema().end(),
                           [&](const SectionKeys& s) { return name == s.section; });
    if (it == Schema().end()) {
      return InvalidArgument(At(source, v) + ": unknown section [" + SanitizeUtf8(name) + "]" +
                                 DidYouMean(name, sections),
                             "invalid_config");
    }
    std::string where = it->array ? "[[" + name + "]]" : "[" + name + "]";
    if (!it->array) {
      const toml::table* t = v.as_table();
      if (!t)
        return InvalidArgument(At(source, v) + ": " + where + " must be a table", "invalid_config");
      RETURN_IF_ERROR(UnknownKeys(*t, it->keys, where, source));
      continue;
    }
    const toml::array* a = v.as_array();
    if (!a)
      return InvalidArgument(At(source, v) + ": " + where + " must be an array of tables",
                             "invalid_config");
    for (const auto& item : *a) {
      const toml::table* t = item.as_table();
      if (!t)
        return InvalidArgument(At(source, item) + ": " + where + " entries must be tables",
                               "invalid_config");
      RETURN_IF_ERROR(UnknownKeys(*t, it->keys, where, source));
      if (name != "regions") continue;
      for (const char* engine_key : {"database", "blobs"}) {
        if (const toml::table* e = (*t)[engine_key].as_table()) {
          std::vector<std::string> keys = {"engine", "dir", "dsn"};
          if (std::string(engine_key) == "blobs") {
            keys.insert(keys.end(), {"endpoint", "bucket", "region", "prefix", "access_key_id",
                                     "secret_access_key", "path_style"});
          }
          RETURN_IF_ERROR(UnknownKeys(*e, keys, where + " " + engine_key, source));
        }
      }
    }
  }
  return Status::Ok();
}

// The file over the embedded default: a key it gives replaces the default's; [[users]] and
// [[regions]] it gives replace the default lists whole.
void MergeOver(toml::table& base, const toml::table& file) {
  for (const auto& [k, v] : file) {
    toml::table* section = base[k].as_table();
    if (v.is_table() && section) {
      for (const auto& [key, value] : *v.as_table()) section->insert_or_assign(key, value);
    } else {
      base.insert_or_assign(k, v);
    }
  }
}

Status ReadEngine(const toml::table& region, const char* key, const std::string& data_dir,
                  const std::string& slug, EngineConfig& out, const std::string& source,
                  const std::string& where) {
  const toml::table* t = region[key].as_table();
  if (!t) return Bad(source, where + key, "is missing (an inline table with engine = ...)");
  const std::string at = where + key + ".";
  RETURN_IF_ERROR(Read<std::string>(*t, "engine", out.engine, source, at));
  RETURN_IF_ERROR(Read<std::string>(*t, "dir", out.dir, source, at));
  RETURN_IF_ERROR(Read<std::string>(*t, "dsn", out.dsn, source, at));
  for (auto [name, field] : {std::pair<const char*, std::string*>{"endpoint", &out.endpoint},
                             {"bucket", &out.bucket},
                             {"region", &out.region},
                             {"prefix", &out.prefix},
                             {"access_key_id", &out.access_key_id},
                             {"secret_access_key", &out.secret_access_key}}) {
    RETURN_IF_ERROR(Read<std::string>(*t, name, *field, source, at));
  }
  RETURN_IF_ERROR(Read<bool>(*t, "path_style", out.path_style, source, at));
  if (out.engine == "s3") {
    if (out.endpoint.rfind("http://", 0) != 0 && out.endpoint.rfind("https://", 0) != 0) {
      return Bad(source, at + "endpoint", "must be an http:// or https:// URL");
    }
    if (out.bucket.empty()) return Bad(source, at + "bucket", "is required");
    if (!out.prefix.empty() && out.prefix.back() != '/') out.prefix += '/';
    if (out.dir.empty()) out.dir = "blob-index/" + slug;  // the local index
  }
  out.dir = Resolve(data_dir, out.dir);
  bool file_engine = out.engine == "sqlite" || out.engine == "fs";
  if (file_engine && out.dir.empty()) return Bad(source, at + "dir", "is required");
  if (out.engine == "postgres" && out.dsn.empty()) return Bad(source, at + "dsn", "is required");
  if (!file_engine && out.engine != "postgres" && out.engine != "s3") {
    return Bad(source, at + "engine", "is unknown: '" + out.engine + "'");
  }
  bool database = std::string(key) == "database";
  if (database != (out.engine == "sqlite" || out.engine == "postgres")) {
    return Bad(source, at + "engine",
               "'" + out.engine + "' is not a " + (database ? "database" : "blob") + " engine (" +
                   (database ? "sqlite or postgres" : "fs or s3") + ")");
  }
  return Status::Ok();
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, const std::string& base_dir,
                           const std::string& source) {
  toml::table root, file;
  try {
    root = toml::parse(EmbeddedDefaultConfigToml(), std::string_view("<embedded default>"));
    file = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return InvalidArgument(msg.str(), "invalid_config");
  }
  RETURN_IF_ERROR(CheckKnownKeys(file, source));
  MergeOver(root, file);
  Config c;
  c.source = source;
  std::string data_dir = "var";
  if (const auto* s = root["server"].as_table()) {
    RETURN_IF_ERROR(Read<std::string>(*s, "listen", c.listen, source, "server."));
    RETURN_IF_ERROR(Read<std::string>(*s, "data_dir", data_dir, source, "server."));
    RETURN_IF_ERROR(Read<int64_t>(*s, "max_body_bytes", c.max_body_bytes, source, "server."));
    RETURN_IF_ERROR(Read<int64_t>(*s, "max_blob_bytes", c.max_blob_bytes, source, "server."));
    RETURN_IF_ERROR(
        Read<int64_t>(*s, "max_retry_after_seconds", c.max_retry_after_seconds, source, "server."));
    RETURN_IF_ERROR(Read<std::string>(*s, "apps_domain", c.apps_domain, source, "server."));
    RETURN_IF_ERROR(
        Read<int64_t>(*s, "buffer_writes_seconds", c.buffer_writes_seconds, source, "server."));
    RETURN_IF_ERROR(Read<int64_t>(*s, "max_connections", c.max_connections, source, "server."));
    RETURN_IF_ERROR(
        Read<int64_t>(*s, "header_timeout_seconds", c.header_timeout_seconds, source, "server."));
    RETURN_IF_ERROR(
        Read<int64_t>(*s, "idle_timeout_seconds", c.idle_timeout_seconds, source, "server."));
  }
  if (c.max_body_bytes < 1) return Bad(source, "server.max_body_bytes", "must be at least 1");
  if (c.max_blob_bytes < 0 || c.max_blob_bytes > (5LL << 40)) {
    return Bad(source, "server.max_blob_bytes", "must be between 0 and 5 TiB");
  }
  if (c.max_retry_after_seconds < 1 || c.max_retry_after_seconds > 86400) {
    return Bad(source, "server.max_retry_after_seconds", "must be between 1 and 86400");
  }
  if (c.buffer_writes_seconds < 0 || c.buffer_writes_seconds > 60) {
    return Bad(source, "server.buffer_writes_seconds", "must be between 0 and 60");
  }
  if (c.max_connections < 1 || c.max_connections > 100000) {
    return Bad(source, "server.max_connections", "must be between 1 and 100000");
  }
  if (c.header_timeout_seconds < 1 || c.idle_timeout_seconds < 1) {
    return Bad(source, "server.header_timeout_seconds and idle_timeout_seconds",
               "must be at least 1");
  }
  if (c.apps_domain.empty() || c.apps_domain.back() == '.' ||
      c.apps_domain.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ /") != std::string::npos) {
    return Bad(source, "server.apps_domain",
               "must be a lowercase domain name like apps.example.com");
  }
  c.data_dir = Resolve(base_dir, data_dir);
  std::string store_path = "control.sqlite3";
  if (const auto* s = root["control_store"].as_table()) {
    RETURN_IF_ERROR(
        Read<std::string>(*s, "engine", c.control_store_engine, source, "control_store."));
    RETURN_IF_ERROR(Read<std::string>(*s, "path", store_path, source, "control_store."));
    RETURN_IF_ERROR(Read<std::string>(*s, "dsn", c.control_store_dsn, source, "control_store."));
    RETURN_IF_ERROR(Read<int64_t>(*s, "max_connections", c.control_store_max_connections, source,
                                  "control_store."));
  }
  if (c.control_store_max_connections < 1 || c.control_store_max_connections > 1000) {
    return Bad(source, "control_store.max_connections", "must be between 1 and 1000");
  }
  c.control_store_path = Resolve(c.data_dir, store_path);
  if (c.control_store_engine != "sqlite" && c.control_store_engine != "postgres") {
    return Bad(source, "control_store.engine", "must be \"sqlite\" or \"postgres\"");
  }
  if (c.control_store_engine == "postgres" && c.control_store_dsn.empty()) {
    return Bad(source, "control_store.dsn", "is required for the postgres engine");
  }
  if (const auto* s = root["saga"].as_table()) {
    RETURN_IF_ERROR(Read<int64_t>(*s, "workers", c.workers, source, "saga."));
    RETURN_IF_ERROR(Read<int64_t>(*s, "max_attempts", c.max_attempts, source, "saga."));
    RETURN_IF_ERROR(Read<int64_t>(*s, "lease_seconds", c.lease_seconds, source, "saga."));
    RETURN_IF_ERROR(Read<int64_t>(*s, "max_concurrent", c.max_concurrent, source, "saga."));
    RETURN_IF_ERROR(Read<int64_t>(*s, "max_concurrent_per_region", c.max_concurrent_per_region,
                                  source, "saga."));
    RETURN_IF_ERROR(Read<std::string>(*s, "default_strategy", c.default_strategy, source, "saga."));
    RETURN_IF_ERROR(
        Read<int64_t>(*s, "block_budget_seconds", c.block_budget_seconds, source, "saga."));
  }
  if (c.block_budget_seconds < 1 || c.block_budget_seconds > 86400) {
    return Bad(source, "saga.block_budget_seconds", "must be between 1 and 86400");
  }
  if (c.default_strategy != "offline" && c.default_strategy != "online") {
    return Bad(source, "saga.default_strategy", "must be \"offline\" or \"online\"");
  }
  if (c.workers < 1 || c.max_attempts < 1 || c.lease_seconds < 1 || c.max_concurrent < 1 ||
      c.max_concurrent_per_region < 1) {
    return Bad(source, "[saga]", "values must all be at least 1");
  }
  if (const auto* s = root["replicas"].as_table()) {
    RETURN_IF_ERROR(Read<int64_t>(*s, "retention_days", c.retention_days, source, "replicas."));
    if (const toml::node* n = s->get("price_per_gb_month_usd")) {
      auto v = n->value<double>();
      if (!v || *v < 0) return Bad(source, "replicas.price_per_gb_month_usd", "must be >= 0");
      c.price_per_gb_month_usd = *v;
    }
  }
  std::string key_file = "secret.key";
  if (const auto* s = root["secrets"].as_table()) {
    RETURN_IF_ERROR(Read<std::string>(*s, "key_file", key_file, source, "secrets."));
  }
  c.secrets_key_file = Resolve(c.data_dir, key_file);

  if (const auto* users = root["users"].as_array()) {
    for (size_t i = 0; i < users->size(); ++i) {
      std::string where = "users[" + std::to_string(i) + "].";
      const toml::table* u = (*users)[i].as_table();
      if (!u) return Bad(source, where, "is not a table");
      UserConfig uc;
      std::string token;
      RETURN_IF_ERROR(Read<std::string>(*u, "name", uc.name, source, where));
      RETURN_IF_ERROR(Read<std::string>(*u, "token", token, source, where));
      RETURN_IF_ERROR(Read<std::string>(*u, "token_sha256", uc.token_sha256, source, where));
      RETURN_IF_ERROR(Read<bool>(*u, "admin", uc.admin, source, where));
      RETURN_IF_ERROR(Read<std::string>(*u, "role", uc.role, source, where));
      if (!uc.role.empty() && uc.role != "edge") {
        return Bad(source, where + "role", "must be \"edge\" when given");
      }
      if (uc.name.empty()) return Bad(source, where + "name", "is required");
      if (!token.empty()) uc.token_sha256 = Sha256Hex(token);
      if (uc.token_sha256.size() != 64) {
        return Bad(source, where + "token", "or token_sha256 (64 hex chars) is required");
      }
      c.users.push_back(std::move(uc));
    }
  }

  const auto* regions = root["regions"].as_array();
  if (!regions || regions->empty()) return Bad(source, "[[regions]]", "must list at least one");
  for (size_t i = 0; i < regions->size(); ++i) {
    std::string where = "regions[" + std::to_string(i) + "].";
    const toml::table* t = (*regions)[i].as_table();
    if (!t) return Bad(source, where, "is not a table");
    RegionConfig r;
    RETURN_IF_ERROR(Read<std::string>(*t, "slug", r.slug, source, where));
    RETURN_IF_ERROR(Read<std::string>(*t, "name", r.name, source, where));
    RETURN_IF_ERROR(Read<std::string>(*t, "status", r.status, source, where));
    RETURN_IF_ERROR(Read<int64_t>(*t, "max_apps", r.max_apps, source, where));
    RETURN_IF_ERROR(Read<int64_t>(*t, "max_bytes", r.max_bytes, source, where));
    RETURN_IF_ERROR(Read<std::string>(*t, "upstream", r.upstream, source, where));
    if (r.upstream.find_first_of(" \t\r\n;{}'\"") != std::string::npos) {
      return Bad(source, where + "upstream", "must be a host:port or an upstream name");
    }
    if (!IsValidRegionSlug(r.slug)) {
      return Bad(source, where + "slug", "'" + r.slug + "' is not a region slug like us-east-1");
    }
    if (c.FindRegion(r.slug)) return Bad(source, where + "slug", "'" + r.slug + "' is repeated");
    if (r.status != "available" && r.status != "draining" && r.status != "offline") {
      return Bad(source, where + "status", "must be available, draining or offline");
    }
    if (r.name.empty()) r.name = r.slug;
    RETURN_IF_ERROR(ReadEngine(*t, "database", c.data_dir, r.slug, r.database, source, where));
    RETURN_IF_ERROR(ReadEngine(*t, "blobs", c.data_dir, r.slug, r.blobs, source, where));
    c.regions.push_back(std::move(r));
  }
  if (const auto* hooks = root["webhooks"].as_array()) {
    for (size_t i = 0; i < hooks->size(); ++i) {
      std::string where = "webhooks[" + std::to_string(i) + "].";
      const toml::table* t = (*hooks)[i].as_table();
      if (!t) return Bad(source, where, "is not a table");
      WebhookConfig w;
      RETURN_IF_ERROR(Read<std::string>(*t, "name", w.name, source, where));
      RETURN_IF_ERROR(Read<std::string>(*t, "url", w.url, source, where));
      RETURN_IF_ERROR(Read<std::string>(*t, "secret", w.secret, source, where));
      RETURN_IF_ERROR(Read<int64_t>(*t, "timeout_ms", w.timeout_ms, source, where));
      RETURN_IF_ERROR(Read<int64_t>(*t, "min_backoff_ms", w.min_backoff_ms, source, where));
      RETURN_IF_ERROR(Read<int64_t>(*t, "max_backoff_ms", w.max_backoff_ms, source, where));
      RETURN_IF_ERROR(
          Read<int64_t>(*t, "give_up_after_seconds", w.give_up_after_seconds, source, where));
      if (w.url.rfind("http://", 0) != 0 && w.url.rfind("https://", 0) != 0) {
        return Bad(source, where + "url", "must be an http:// or https:// URL");
      }
      if (w.secret.size() < 16) return Bad(source, where + "secret", "needs 16 characters or more");
      if (w.name.empty()) w.name = w.url;
      if (const toml::node* n = t->get("events")) {
        const toml::array* a = n->as_array();
        if (!a || a->empty()) return Bad(source, where + "events", "must be a list of patterns");
        w.events.clear();
        for (const auto& e : *a) {
          auto v = e.value<std::string>();
          if (!v) return Bad(source, where + "events", "must hold strings");
          bool any = false;
          for (const auto& type : WebhookEventTypes()) any = any || GlobMatch(*v, type);
          if (!any) {
            return Bad(source, where + "events",
                       "'" + SanitizeUtf8(*v) + "' matches no event type" +
                           DidYouMean(*v, WebhookEventTypes()));
          }
          w.events.push_back(*v);
        }
      }
      if (w.timeout_ms < 100 || w.timeout_ms > 60000 || w.min_backoff_ms < 10 ||
          w.max_backoff_ms < w.min_backoff_ms || w.give_up_after_seconds < 1) {
        return Bad(source, where,
                   "needs timeout_ms in 100..60000, min_backoff_ms >= 10, max_backoff_ms >= "
                   "min_backoff_ms and give_up_after_seconds >= 1");
      }
      for (const auto& other : c.webhooks) {
        if (other.name == w.name)
          return Bad(source, where + "name", "'" + w.name + "' is repeated");
      }
      c.webhooks.push_back(std::move(w));
    }
  }
  return c;
}

const std::vector<std::string>& WebhookEventTypes() {
  static const std::vector<std::string> kTypes = {
      "migration.started", "migration.step_changed", "migration.writes_blocked",
      "migration.cutover", "migration.completed",    "migration.aborted",
      "migration.failed",  "replica.torn_down",      "replica.diverged"};
  return kTypes;
}

Result<Config> LoadConfig(const std::string& path) {
  if (path.empty()) {
    return ParseConfig(EmbeddedDefaultConfigToml(), fs::current_path().string(),
                       "<embedded default>");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot read config file " + path, "invalid_config");
  std::stringstream buf;
  buf << in.rdbuf();
  std::string base = fs::absolute(fs::path(path)).parent_path().string();
  return ParseConfig(buf.str(), base, path);
}

}  // namespace regionmove
