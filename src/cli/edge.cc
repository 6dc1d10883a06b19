#include "cli/edge.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/log.h"

namespace regionmove {

namespace {

using nlohmann::json;

// A quoted nginx string: hosts and upstreams are validated by the server, but a value that
// could break out of its quotes is dropped rather than trusted.
bool Quotable(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == ';' || c == '{' || c == '}' || c == '$' ||
        static_cast<unsigned char>(c) <= ' ') {
      return false;
    }
  }
  return true;
}

std::string Q(const std::string& s) { return "\"" + s + "\""; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// Writes `text` to `path` through a temporary file and a rename: nginx never reads half a file.
bool WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!(out << text) || !out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

std::string RenderNginxMaps(const json& feed) {
  std::string upstream, retry;
  for (const auto& a : feed.value("apps", json::array())) {
    const std::string up = a.value("upstream", "");
    const bool blocked = a.value("writes_blocked", false);
    const int64_t after = a.value("retry_after_seconds", int64_t{5});
    for (const auto& h : a.value("hosts", json::array())) {
      if (!h.is_string() || !Quotable(h.get<std::string>())) continue;
      const std::string host = h.get<std::string>();
      if (Quotable(up)) upstream += "    " + Q(host) + " " + Q(up) + ";\n";
      if (blocked)
        retry += "    " + Q(host) + " " + Q(std::to_string(std::max<int64_t>(1, after))) + ";\n";
    }
  }
  std::string out;
  out += "# Written by `regionmove edge nginx` from routing version " +
         std::to_string(feed.value("version", int64_t{0})) +
         ". Replaced on every change: do not edit.\n";
  out += "map $host $regionmove_upstream {\n    default \"\";\n" + upstream + "}\n";
  out += "# Apps whose writes are paused by a move, with the Retry-After to give.\n";
  out += "map $host $regionmove_block_retry {\n    default \"\";\n" + retry + "}\n";
  out += "# Non-empty (the Retry-After) for a write to a paused app; reads pass.\n";
  out +=
      "map \"$regionmove_block_retry:$request_method\" $regionmove_refuse_write {\n"
      "    default \"\";\n"
      "    \"~^:\" \"\";\n"
      "    \"~^\\d+:(GET|HEAD|OPTIONS)$\" \"\";\n"
      "    \"~^(?<regionmove_after>\\d+):\" $regionmove_after;\n"
      "}\n";
  return out;
}

std::string NginxServerSnippet() {
  return R"(# In the http block:   include /path/to/the/--out/file;
# In the server block of the apps' hosts (server_name *.apps.example.com custom.example.com):
location / {
    default_type application/json;
    if ($regionmove_upstream = "") {
        return 404 '{"error":"not_found","message":"no app is routed at this host"}';
    }
    if ($regionmove_refuse_write) {
        add_header Retry-After $regionmove_refuse_write always;
        return 503 '{"error":"app_migrating","message":"writes are paused while the app moves between regions; retry after Retry-After seconds"}';
    }
    proxy_pass http://$regionmove_upstream;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
}
)";
}

int RunEdgeNginx(const EdgeOptions& o) {
  if (o.out.empty()) {
    std::cerr << "regionmove edge nginx: --out FILE is required\n";
    return 2;
  }
  std::string url = o.server.empty() ? "http://127.0.0.1:8080" : o.server;
  while (url.size() > 1 && url.back() == '/') url.pop_back();
  httplib::Client client(url);
  client.set_connection_timeout(5);
  client.set_read_timeout(o.wait_seconds + 15);
  if (!o.token.empty()) client.set_bearer_token_auth(o.token);
  int64_t version = -1;
  int failures = 0;
  if (!o.once) Log(LogLevel::kInfo, "edge_following", {{"server", url}, {"file", o.out}});
  for (;;) {
    std::string path = "/v1/routing";
    if (version >= 0) {
      path += "?since=" + std::to_string(version) + "&wait=" + std::to_string(o.wait_seconds);
    }
    auto r = client.Get(path);
    std::string error;
    if (!r) {
      error = "cannot reach " + url + " (" + httplib::to_string(r.error()) + ")";
    } else if (r->status == 304) {
      failures = 0;
      continue;
    } else if (r->status != 200) {
      error = "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300);
      if (r->status == 401 || r->status == 403) {
        std::cerr << "regionmove edge nginx: " << error << "\n";
        return 1;
      }
    }
    json feed;
    if (error.empty()) {
      feed = json::parse(r->body, nullptr, false);
      if (!feed.is_object()) error = "the routing feed is not JSON";
    }
    if (!error.empty()) {
      if (o.once) {
        std::cerr << "regionmove edge nginx: " << error << "\n";
        return 1;
      }
      Log(LogLevel::kWarn, "edge_feed", {{"error", error}});
      int delay_ms = std::min(10000, 250 << std::min(failures++, 6));
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      continue;
    }
    failures = 0;
    version = feed.value("version", int64_t{0});
    const std::string text = RenderNginxMaps(feed);
    if (text != ReadFile(o.out)) {
      if (!WriteAtomically(o.out, text)) {
        std::cerr << "regionmove edge nginx: cannot write " << o.out << "\n";
        return 1;
      }
      Log(LogLevel::kInfo, "edge_rendered",
          {{"file", o.out}, {"version", std::to_string(version)}});
      if (!o.reload_cmd.empty()) {
        int rc = std::system(o.reload_cmd.c_str());
        if (rc != 0) {
          Log(LogLevel::kWarn, "edge_reload",
              {{"command", o.reload_cmd}, {"status", std::to_string(rc)}});
        }
      }
    }
    if (o.once) return 0;
  }
}

}  // namespace regionmove
