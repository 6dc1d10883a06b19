#include "api/routing.h"

#include <httplib.h>

#include <vector>

#include "service/system.h"

namespace regionmove {

namespace {

const char* kDataKinds[] = {"tables", "blobs", "functions", "env", "cron", "domains"};

bool IsDataKind(const std::string& s) {
  for (const char* k : kDataKinds) {
    if (s == k) return true;
  }
  return false;
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

std::optional<std::string> AppForHost(System* sys, const std::string& host_header) {
  std::string host = host_header.substr(0, host_header.find(':'));
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host.empty()) return std::nullopt;
  if (auto r = sys->store()->ResolveHost(host); r.ok() && r->custom) return r->app_id;
  const std::string suffix = "." + sys->config().apps_domain;
  if (host.size() > suffix.size() &&
      host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0) {
    std::string label = host.substr(0, host.size() - suffix.size());
    if (auto r = sys->store()->ResolveHost(label); r.ok() && !r->custom) return r->app_id;
  }
  return std::nullopt;
}

std::optional<std::string> DataWriteTarget(System* sys, const httplib::Request& req) {
  const std::string& m = req.method;
  if (m != "POST" && m != "PUT" && m != "PATCH" && m != "DELETE") return std::nullopt;
  std::vector<std::string> seg = Split(req.path);
  if (seg.size() >= 4 && seg[0] == "v1" && seg[1] == "apps" && IsDataKind(seg[3])) return seg[2];
  if (!seg.empty() && IsDataKind(seg[0])) return AppForHost(sys, req.get_header_value("Host"));
  return std::nullopt;
}

bool IsBlobUpload(const httplib::Request& req) {
  if (req.method != "PUT") return false;
  std::vector<std::string> seg = Split(req.path);
  if (seg.size() >= 5 && seg[0] == "v1" && seg[1] == "apps" && seg[3] == "blobs") return true;
  return seg.size() >= 2 && seg[0] == "blobs";
}

std::string NormalizeRoute(const std::string& path) {
  // Literal segments that routes use; anything else is a parameter or an unknown path.
  static const char* kLiterals[] = {
      "v1",      "apps",    "migrations",      "active",    "events",  "abort",
      "reverse", "move",    "source-replicas", "admin",     "summary", "region-state",
      "repair",  "regions", "healthz",         "debris",    "metrics", "mcp",
      "tables",  "blobs",   "functions",       "env",       "cron",    "domains",
      "ui",      "routing", "webhooks",        "deliveries"};
  auto literal = [](const std::string& s) {
    for (const char* l : kLiterals) {
      if (s == l) return true;
    }
    return false;
  };
  std::vector<std::string> seg = Split(path);
  std::vector<std::string> out;
  for (size_t i = 0; i < seg.size(); ++i) {
    const std::string prev = i > 0 ? seg[i - 1] : "";
    std::string s = seg[i];
    if (prev == "apps") {
      s = "{app_id}";
    } else if (prev == "migrations" && s != "active" && s != "summary") {
      s = "{migration_id}";
    } else if (prev == "source-replicas") {
      s = "{migration_id}";
    } else if (prev == "tables") {
      s = "{table}";
    } else if (i >= 2 && seg[i - 2] == "tables") {
      s = "{id}";
    } else if (prev == "blobs") {
      out.push_back("{key}");
      break;
    } else if (prev == "functions" || prev == "env" || prev == "cron" || prev == "domains") {
      s = "{name}";
    } else if (!literal(s)) {
      return "other";
    }
    out.push_back(s);
    if (out.size() > 8) return "other";
  }
  std::string r;
  for (const auto& s : out) r += "/" + s;
  return r.empty() ? "/" : r;
}

}  // namespace regionmove
