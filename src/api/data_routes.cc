// The app data API of SPEC §7: tables and rows, blobs, functions, env vars, cron triggers and
// custom domains, under /v1/apps/{app_id}/ or on the app's own host.
#include <httplib.h>

#include <memory>
#include <regex>
#include <tuple>

#include "api/http_api.h"
#include "api/http_util.h"
#include "api/routing.h"
#include "api/views.h"

namespace regionmove {

using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;

namespace {

using Reply = Result<std::pair<int, json>>;

bool IsName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

// 405; `allow` goes into the Allow header.
Status MethodNotAllowed(const Req& req, const std::string& allow) {
  return Status(StatusCode::kInvalidArgument, req.method + " is not served here; use " + allow,
                "method_not_allowed", allow);
}

// HEAD is answered as GET (httplib drops the body).
std::string MethodOf(const Req& req) { return req.method == "HEAD" ? "GET" : req.method; }

Reply Tables(System* sys, const http::Caller& c, const Req& req, const std::string& app,
             const std::string& rest) {
  AppService* apps = sys->apps();
  const std::string method = MethodOf(req);
  bool write = method != "GET";
  ASSIGN_OR_RETURN(RegionPlane * plane,
                   write ? apps->ForWrite(c.owner(), app) : apps->ForRead(c.owner(), app));
  size_t slash = rest.find('/');
  std::string table = rest.substr(0, slash);
  std::string id = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (table.empty()) {
    if (method == "GET") {
      ASSIGN_OR_RETURN(auto tables, plane->db->ListTables(app));
      json out = json::array();
      for (const auto& t : tables) {
        json cols = json::array();
        for (const auto& col : t.columns) cols.push_back({{"name", col.name}, {"type", col.type}});
        out.push_back({{"name", t.name}, {"columns", cols}, {"row_count", t.row_count}});
      }
      return std::pair<int, json>{200, {{"tables", out}}};
    }
    if (method != "POST") return MethodNotAllowed(req, "GET, HEAD, POST");
    ASSIGN_OR_RETURN(json body, http::ParseJsonBody(req));
    RETURN_IF_ERROR(http::CheckFields(body, {"name", "columns"}));
    ASSIGN_OR_RETURN(std::string name, http::StringField(body, "name", true));
    if (!body.contains("columns") || !body["columns"].is_array()) {
      return InvalidArgument("field 'columns' must be an array of {name, type}");
    }
    TableSpec spec{name, {}};
    for (const auto& col : body["columns"]) {
      if (!col.is_object())
        return InvalidArgument("field 'columns' must hold {name, type} objects");
      RETURN_IF_ERROR(http::CheckFields(col, {"name", "type"}, "column field"));
      ASSIGN_OR_RETURN(std::string cname, http::StringField(col, "name", true));
      ASSIGN_OR_RETURN(std::string ctype, http::StringField(col, "type", true));
      spec.columns.push_back({cname, ctype});
    }
    RETURN_IF_ERROR(plane->db->CreateTable(app, spec));
    return std::pair<int, json>{201,
                                {{"name", name}, {"columns", body["columns"]}, {"row_count", 0}}};
  }
  if (id.empty()) {
    if (method == "GET") {
      ASSIGN_OR_RETURN(int limit, http::IntParam(req, "limit", 100, 1000));
      if (limit == 0) return InvalidArgument("parameter 'limit' must be at least 1");
      std::string after = req.has_param("after") ? req.get_param_value("after") : "";
      ASSIGN_OR_RETURN(json rows, plane->db->ListRows(app, table, after, limit));
      json next = rows.size() == static_cast<size_t>(limit) ? rows.back()["id"] : json(nullptr);
      return std::pair<int, json>{200, {{"rows", rows}, {"next_after", next}}};
    }
    if (method != "POST") return MethodNotAllowed(req, "GET, HEAD, POST");
    ASSIGN_OR_RETURN(json body, http::ParseJsonBody(req));
    if (!body.is_object() && !body.is_array()) {
      return InvalidArgument("the body must be a row object or an array of them");
    }
    ASSIGN_OR_RETURN(json rows, plane->db->InsertRows(app, table, body));
    return std::pair<int, json>{201, {{"rows", rows}}};
  }
  if (method == "GET") {
    ASSIGN_OR_RETURN(json row, plane->db->GetRow(app, table, id));
    return std::pair<int, json>{200, row};
  }
  if (method == "PATCH") {
    ASSIGN_OR_RETURN(json body, http::ParseJsonBody(req));
    ASSIGN_OR_RETURN(json row, plane->db->UpdateRow(app, table, id, body));
    return std::pair<int, json>{200, row};
  }
  if (method == "DELETE") {
    RETURN_IF_ERROR(plane->db->DeleteRow(app, table, id));
    return std::pair<int, json>{204, nullptr};
  }
  return MethodNotAllowed(req, "DELETE, GET, HEAD, PATCH");
}

// A blob being sent: the reader of the version opened, reopened at another offset when httplib
// asks for one (a Range, or the parts of several), and only for that same version.
struct BlobStream {
  BlobStore* blobs = nullptr;
  std::string app;
  BlobInfo info;
  std::unique_ptr<BlobReader> reader;
  int64_t pos = 0;

  bool Send(int64_t offset, size_t length, httplib::DataSink& sink) {
    if (offset != pos) {
      BlobInfo now;
      auto r = blobs->OpenAt(app, info.key, offset, &now);
      if (!r.ok() || now.sha256 != info.sha256) return false;  // changed since: end the reply
      reader = std::move(*r);
      pos = offset;
    }
    char buf[1 << 16];
    auto n = reader->Read(buf, std::min(length, sizeof buf));
    if (!n.ok() || *n == 0) return false;
    pos += static_cast<int64_t>(*n);
    return sink.write(buf, *n);
  }
};

// Blobs answer raw bytes on GET, so this one writes the response itself. `body`: the request's
// body as it arrives (a blob upload), or nullptr when it was read into req.body.
Status Blobs(System* sys, const http::Caller& c, const Req& req, Res& res, const std::string& app,
             const std::string& key, const httplib::ContentReader* body) {
  AppService* apps = sys->apps();
  const std::string method = MethodOf(req);
  bool write = method != "GET";
  if (key.empty() && method != "GET" && method != "PUT" && method != "DELETE") {
    return MethodNotAllowed(req, "GET, HEAD");
  }
  if (write || !key.empty()) RETURN_IF_ERROR(ValidateBlobKey(key));  // empty: invalid_key
  if (method == "PUT") {
    std::string type = req.get_header_value("Content-Type");
    if (type.size() > 255) return InvalidArgument("header Content-Type is longer than 255 bytes");
  }
  ASSIGN_OR_RETURN(RegionPlane * plane,
                   write ? apps->ForWrite(c.owner(), app) : apps->ForRead(c.owner(), app));
  if (key.empty()) {
    ASSIGN_OR_RETURN(int limit, http::IntParam(req, "limit", 100, 1000));
    if (limit == 0) return InvalidArgument("parameter 'limit' must be at least 1");
    std::string prefix = req.has_param("prefix") ? req.get_param_value("prefix") : "";
    std::string after = req.has_param("after") ? req.get_param_value("after") : "";
    ASSIGN_OR_RETURN(auto list, plane->blobs->List(app, prefix, after, limit));
    json out = json::array();
    for (const auto& b : list) out.push_back(BlobJson(b));
    json next = list.size() == static_cast<size_t>(limit) ? json(list.back().key) : json(nullptr);
    http::Reply(res, 200, {{"blobs", out}, {"next_after", next}});
    return Status::Ok();
  }
  if (method == "PUT") {
    // The content streams into a staged blob (invisible, outside the fence: an upload of
    // minutes does not hold up a move's drain) and is published under the app's write fence,
    // so an upload that ends after a move blocked the writes is refused, not lost.
    const httplib::ContentReader whole(
        [&](const httplib::ContentReceiver& receive) {
          return req.body.empty() || receive(req.body.data(), req.body.size());
        },
        nullptr);
    const httplib::ContentReader& reader = body ? *body : whole;
    const int64_t max_bytes = sys->config().max_blob_bytes;
    ASSIGN_OR_RETURN(auto writer,
                     plane->blobs->StartStage(app, key, req.get_header_value("Content-Type"), ""));
    int64_t received = 0;
    Status written;
    bool whole_body = reader([&](const char* data, size_t n) {
      received += static_cast<int64_t>(n);
      if (received > max_bytes) {
        written = http::PayloadTooLarge(max_bytes);
      } else {
        written = writer->Write(data, n);
      }
      return written.ok();
    });
    RETURN_IF_ERROR(written);
    if (!whole_body) return InvalidArgument("the request body ended before its length");
    ASSIGN_OR_RETURN(BlobInfo info, writer->Finish());
    RETURN_IF_ERROR(
        plane->db->WithWriteFence(app, [&] { return plane->blobs->Publish(app, {info}); }));
    http::Reply(res, 201, {{"key", info.key}, {"size", info.size}, {"sha256", info.sha256}});
    return Status::Ok();
  }
  if (method == "GET") {
    // Streamed from the store: memory stays flat whatever the blob's size. httplib serves a
    // Range (206, Content-Range; several as multipart/byteranges) by asking for an offset.
    auto stream = std::make_shared<BlobStream>();
    ASSIGN_OR_RETURN(stream->reader, plane->blobs->Open(app, key, &stream->info));
    const BlobInfo& info = stream->info;
    for (const auto& [first, last] : req.ranges) {
      bool satisfiable = first >= 0 ? first < info.size : last > 0 && info.size > 0;
      if (!satisfiable) {
        res.status = 416;
        res.set_header("Content-Range", "bytes */" + std::to_string(info.size));
        http::Reply(res, 416,
                    ErrorJson(InvalidArgument("range not satisfiable: the blob has " +
                                                  std::to_string(info.size) + " bytes",
                                              "range_not_satisfiable")));
        return Status::Ok();
      }
    }
    res.set_header("ETag", "\"" + info.sha256 + "\"");
    res.set_header("Accept-Ranges", "bytes");
    res.set_header("X-Content-Type-Options", "nosniff");  // stored types are the uploader's
    if (info.size == 0) {
      res.status = 200;
      res.set_content("", info.content_type.c_str());
      return Status::Ok();
    }
    stream->blobs = plane->blobs.get();
    stream->app = app;
    res.set_content_provider(static_cast<size_t>(info.size), info.content_type.c_str(),
                             [stream](size_t offset, size_t length, httplib::DataSink& sink) {
                               return stream->Send(static_cast<int64_t>(offset), length, sink);
                             });
    return Status::Ok();
  }
  if (method == "DELETE") {
    RETURN_IF_ERROR(plane->db->WithWriteFence(app, [&] { return plane->blobs->Delete(app, key); }));
    res.status = 204;
    return Status::Ok();
  }
  return MethodNotAllowed(req, "DELETE, GET, HEAD, PUT");
}

Reply Runtime(System* sys, const http::Caller& c, const Req& req, const std::string& app,
              const std::string& kind, const std::string& name) {
  AppService* apps = sys->apps();
  const std::string method = MethodOf(req);
  bool write = method != "GET";
  if (name.empty() && write) return MethodNotAllowed(req, "GET, HEAD");
  if (!name.empty() && method != "GET" && method != "PUT" && method != "DELETE") {
    return MethodNotAllowed(req, "DELETE, GET, HEAD, PUT");
  }
  ASSIGN_OR_RETURN(RegionPlane * plane,
                   write ? apps->ForWrite(c.owner(), app) : apps->ForRead(c.owner(), app));
  ASSIGN_OR_RETURN(RuntimeSnapshot snap, plane->runtime->Snapshot(app, false));
  auto fn_json = [](const FunctionDef& f, bool with_code) {
    json j = {{"name", f.name},
              {"version", f.version},
              {"entrypoint", f.entrypoint},
              {"runtime", f.runtime}};
    if (with_code) j["code"] = f.bundle;
    return j;
  };
  auto env_json = [](const EnvVar& e) {
    return json{{"key", e.key}, {"value", e.secret ? "********" : e.value}, {"secret", e.secret}};
  };
  auto cron_json = [](const CronTrigger& t) {
    return json{{"name", t.name}, {"schedule", t.schedule}, {"function", t.function}};
  };
  if (name.empty()) {
    json out = json::array();
    if (kind == "functions") {
      for (const auto& f : snap.functions) out.push_back(fn_json(f, false));
    } else if (kind == "env") {
      for (const auto& e : snap.env) out.push_back(env_json(e));
    } else if (kind == "cron") {
      for (const auto& t : snap.cron) out.push_back(cron_json(t));
    } else {
      for (const auto& d : snap.domains) out.push_back({{"host", d}});
    }
    return std::pair<int, json>{200, {{kind, out}}};
  }
  if (method == "DELETE") {
    if (kind == "domains") {
      RETURN_IF_ERROR(apps->DeleteDomain(c.owner(), app, name));
    } else {
      RETURN_IF_ERROR(
          plane->db->WithWriteFence(app, [&] { return plane->runtime->Delete(app, kind, name); }));
    }
    return std::pair<int, json>{204, nullptr};
  }
  if (method == "GET") {
    auto not_found = NotFound(kind + " " + name + " not found");
    if (kind == "functions") {
      for (const auto& f : snap.functions) {
        if (f.name == name) return std::pair<int, json>{200, fn_json(f, true)};
      }
    } else if (kind == "env") {
      for (const auto& e : snap.env) {
        if (e.key == name) return std::pair<int, json>{200, env_json(e)};
      }
    } else if (kind == "cron") {
      for (const auto& t : snap.cron) {
        if (t.name == name) return std::pair<int, json>{200, cron_json(t)};
      }
    } else {
      for (const auto& d : snap.domains) {
        if (d == name) return std::pair<int, json>{200, {{"host", d}}};
      }
    }
    return not_found;
  }
  ASSIGN_OR_RETURN(json body, http::ParseJsonBody(req));
  if (kind == "domains") {
    RETURN_IF_ERROR(http::CheckFields(body, {}));
    bool existed = std::find(snap.domains.begin(), snap.domains.end(), name) != snap.domains.end();
    RETURN_IF_ERROR(apps->PutDomain(c.owner(), app, name));
    return std::pair<int, json>{existed ? 200 : 201, {{"host", name}}};
  }
  if (!IsName(name)) {
    return InvalidArgument("'" + name + "' is not a valid name (letters, digits, _ and -)",
                           "invalid_name");
  }
  if (kind == "env" && (name[0] == '-' || isdigit(static_cast<unsigned char>(name[0])) ||
                        name.find('-') != std::string::npos)) {
    return InvalidArgument("env var '" + name + "' must be [A-Za-z_][A-Za-z0-9_]*", "invalid_name");
  }
  if (kind == "functions") {
    RETURN_IF_ERROR(http::CheckFields(body, {"entrypoint", "runtime", "code"}));
    ASSIGN_OR_RETURN(std::string entrypoint, http::StringField(body, "entrypoint", true));
    ASSIGN_OR_RETURN(std::string runtime, http::StringField(body, "runtime", true));
    ASSIGN_OR_RETURN(std::string code, http::StringField(body, "code", true));
    FunctionDef f{name, 1, entrypoint, runtime, code};
    bool existed = false;
    for (const auto& old : snap.functions) {
      if (old.name == name) {
        f.version = old.version + 1;
        existed = true;
      }
    }
    RETURN_IF_ERROR(
        plane->db->WithWriteFence(app, [&] { return plane->runtime->PutFunction(app, f); }));
    return std::pair<int, json>{existed ? 200 : 201, fn_json(f, false)};
  }
  if (kind == "env") {
    RETURN_IF_ERROR(http::CheckFields(body, {"value", "secret"}));
    ASSIGN_OR_RETURN(std::string value, http::StringField(body, "value", true));
    ASSIGN_OR_RETURN(bool secret, http::BoolField(body, "secret", false));
    bool existed = false;
    for (const auto& e : snap.env) existed |= e.key == name;
    EnvVar e{name, value, secret};
    RETURN_IF_ERROR(plane->db->WithWriteFence(app, [&] { return plane->runtime->PutEnv(app, e); }));
    return std::pair<int, json>{existed ? 200 : 201, env_json(e)};
  }
  RETURN_IF_ERROR(http::CheckFields(body, {"schedule", "function"}));
  ASSIGN_OR_RETURN(std::string schedule, http::StringField(body, "schedule", true));
  ASSIGN_OR_RETURN(std::string function, http::StringField(body, "function", true));
  bool known = false, existed = false;
  for (const auto& f : snap.functions) known |= f.name == function;
  for (const auto& t : snap.cron) existed |= t.name == name;
  if (!known) return InvalidArgument("field 'function': no function named '" + function + "'");
  CronTrigger t{name, schedule, function};
  RETURN_IF_ERROR(plane->db->WithWriteFence(app, [&] { return plane->runtime->PutCron(app, t); }));
  return std::pair<int, json>{existed ? 200 : 201, cron_json(t)};
}

void Dispatch(HttpApi* api, System* sys, const Req& req, Res& res, const std::string& app,
              const std::string& kind, const std::string& rest, bool may_wait = true,
              const httplib::ContentReader* body = nullptr) {
  auto caller = http::Authenticate(sys->tokens(), req);
  if (!caller.ok()) {
    if (body) res.set_header("Connection", "close");  // the body was not read
    return http::ReplyError(res, caller.status());
  }
  Status s;
  if (kind == "blobs") {
    s = Blobs(sys, *caller, req, res, app, rest, body);
    // Part of a streamed body may be left unread: the connection cannot carry another request.
    if (!s.ok() && body) res.set_header("Connection", "close");
  } else {
    Reply r = kind == "tables" ? Tables(sys, *caller, req, app, rest)
                               : Runtime(sys, *caller, req, app, kind, rest);
    if (r.ok()) {
      if (r->first == 204) {
        res.status = 204;
      } else {
        http::Reply(res, r->first, r->second);
      }
      return;
    }
    s = r.status();
  }
  if (!s.ok()) {
    if (s.reason() == "method_not_allowed") {
      res.set_header("Allow", s.detail());
      http::Reply(res, 405, ErrorJson(s));
      return;
    }
    if (s.reason() == "app_migrating") {
      // Refused past the guard (the fence landed in between): the same answer as the guard's,
      // after the same wait when an online move pauses the writes. The write was not applied,
      // so it runs again once the pause ends.
      auto blocker = sys->migrations()->WriteBlocker(app);
      // A streamed body cannot be read again: it is refused at once.
      if (may_wait && !body && blocker.ok() && *blocker && api->AwaitUnblock(app, **blocker)) {
        res = Res();
        return Dispatch(api, sys, req, res, app, kind, rest, /*may_wait=*/false);
      }
      return http::ReplyAppMigrating(res, sys->migrations(), app,
                                     blocker.ok() ? *blocker : std::nullopt);
    }
    http::ReplyError(res, s);
  }
}

}  // namespace

void HttpApi::RegisterDataRoutes() {
  System* sys = sys_;
  const std::string v1 = R"(/v1/apps/([^/]+)/(tables|blobs|functions|env|cron|domains)(?:/(.*))?)";
  const std::string host = R"(/(tables|blobs|functions|env|cron|domains)(?:/(.*))?)";
  auto by_path = [this, sys](const Req& req, Res& res) {
    Dispatch(this, sys, req, res, req.matches[1], req.matches[2], req.matches[3]);
  };
  auto by_host = [this, sys](const Req& req, Res& res) {
    auto app = AppForHost(sys, req.get_header_value("Host"));
    if (!app) {
      return http::ReplyError(
          res, NotFound("no app is served at host '" + req.get_header_value("Host") + "'"));
    }
    Dispatch(this, sys, req, res, *app, req.matches[1], req.matches[2]);
  };
  auto upload_by_path = [this, sys](const Req& req, Res& res, const httplib::ContentReader& body) {
    Dispatch(this, sys, req, res, req.matches[1], "blobs", req.matches[3], true, &body);
  };
  auto upload_by_host = [this, sys](const Req& req, Res& res, const httplib::ContentReader& body) {
    auto app = AppForHost(sys, req.get_header_value("Host"));
    if (!app) {
      res.set_header("Connection", "close");
      return http::ReplyError(
          res, NotFound("no app is served at host '" + req.get_header_value("Host") + "'"));
    }
    Dispatch(this, sys, req, res, *app, "blobs", req.matches[2], true, &body);
  };
  for (const auto& [pattern, handler, upload] :
       {std::tuple<std::string, Handler, StreamHandler>{v1, by_path, upload_by_path},
        {host, by_host, upload_by_host}}) {
    for (const char* method : {"GET", "POST", "PATCH", "DELETE"}) Route(method, pattern, handler);
    Route("PUT", pattern, handler, upload);
  }
}

}  // namespace regionmove
