#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace regionmove {

struct EdgeOptions {
  std::string server;      // the regionmove server URL
  std::string token;       // an admin token, or one of a user with role = "edge"
  std::string out;         // the map file nginx includes
  std::string reload_cmd;  // run (by /bin/sh) after the file changed
  bool once = false;       // render once and exit
  int wait_seconds = 30;   // each long poll
};

// `regionmove edge nginx`: follows GET /v1/routing and keeps `out` an nginx include file of
// maps from $host to the app's region upstream and to its write block, replaced atomically and
// followed by the reload command only when its content changed. Runs until killed (or once).
int RunEdgeNginx(const EdgeOptions& o);

// The map file for one routing feed body (exposed for tests).
std::string RenderNginxMaps(const nlohmann::json& feed);
// The server-block snippet that uses the maps (printed by `regionmove edge nginx --snippet`).
std::string NginxServerSnippet();

}  // namespace regionmove
