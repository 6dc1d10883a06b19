// SPEC §7 "Web dashboard": the static files of the dashboard under /ui. The dashboard is a
// client of the REST API (it signs in with an API token and calls /v1/...); nothing here reads
// the store.
#include <httplib.h>

#include <functional>

#include "api/http_api.h"
#include "api/http_util.h"
#include "api/ui_assets.h"

namespace regionmove {

namespace {

std::string UiContentType(const std::string& name) {
  auto ends = [&](const char* ext) {
    std::string e = ext;
    return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

// The page may load its own files and call its own server, nothing else: no inline script, no
// other origin (operators' networks may have no internet, and a token must not leak).
constexpr const char* kUiPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

}  // namespace

void HttpApi::RegisterUi() {
  auto to_ui = [](const httplib::Request&, httplib::Response& res) {
    res.status = 302;
    res.set_header("Location", "/ui/");
  };
  Route("GET", "/", to_ui);
  Route("GET", "/ui", to_ui);
  Route("GET", R"(/ui/([A-Za-z0-9_.-]*))", [](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[1];
    if (name.empty()) name = "index.html";
    std::optional<std::string_view> body = UiAsset(name);
    if (!body) return http::ReplyError(res, NotFound("the dashboard has no file " + name));
    // Revalidated on every load (cheap: 304), so a new binary's dashboard shows at once.
    std::string etag = "\"" + std::to_string(std::hash<std::string_view>()(*body)) + "\"";
    res.set_header("ETag", etag);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("Content-Security-Policy", kUiPolicy);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    if (req.get_header_value("If-None-Match") == etag) {
      res.status = 304;
      return;
    }
    res.status = 200;
    res.set_content(std::string(*body), UiContentType(name));
  });
}

}  // namespace regionmove
