#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "api/http_api.h"
#include "e2e/e2e_util.h"

namespace regionmove::testing {

struct HttpReply {
  int status = 0;
  nlohmann::json body;
  std::string raw;
  httplib::Headers headers;
  std::string Header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

// A System with workers and an HTTP API on a free loopback port.
class HttpFixture : public ::testing::Test {
 protected:
  void StartServer(const std::string& extra_toml = "", const std::string& server_toml = "",
                   const std::string& saga_toml = "") {
    sys_ = OpenSystem(dir_, SystemClock::Default(), &rng_, extra_toml, server_toml, saga_toml);
    ASSERT_NE(sys_, nullptr);
    auto api = HttpApi::Make(sys_.get(), sys_->metrics());
    ASSERT_TRUE(api.ok());
    api_ = std::move(api).value();
    ASSERT_OK(api_->Start("127.0.0.1", 0));
    sys_->Start();
  }
  void TearDown() override {
    if (api_) api_->Stop();
    if (sys_) sys_->Stop();
  }

  HttpReply Call(const std::string& method, const std::string& path, const std::string& token,
                 const std::string& body = "", const std::string& type = "application/json",
                 httplib::Headers headers = {}) {
    httplib::Client c("127.0.0.1", api_->port());
    c.set_read_timeout(30);
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result r = method == "GET"     ? c.Get(path, headers)
                        : method == "POST"  ? c.Post(path, headers, body, type)
                        : method == "PUT"   ? c.Put(path, headers, body, type)
                        : method == "PATCH" ? c.Patch(path, headers, body, type)
                                            : c.Delete(path, headers, body, type);
    HttpReply out;
    if (!r) {
      ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(r.error());
      return out;
    }
    out.status = r->status;
    out.raw = r->body;
    out.headers = r->headers;
    out.body = nlohmann::json::parse(r->body, nullptr, false);
    return out;
  }
  HttpReply Json(const std::string& method, const std::string& path, const std::string& token,
                 const nlohmann::json& body) {
    return Call(method, path, token, body.dump());
  }

  // Creates an app through the API; returns its id.
  std::string CreateApp(const std::string& token, const std::string& region = "us-east-1",
                        const std::string& sub = "") {
    nlohmann::json body = {{"name", "shop"}, {"region", region}};
    if (!sub.empty()) body["subdomain"] = sub;
    HttpReply r = Json("POST", "/v1/apps", token, body);
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.body.value("app_id", "");
  }

  // Polls the migration until it is terminal (bounded).
  nlohmann::json WaitDone(const std::string& token, const std::string& app, const std::string& id,
                          int timeout_ms = 30000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      HttpReply r = Call("GET", "/v1/apps/" + app + "/migrations/" + id, token);
      std::string s = r.body.is_object() ? r.body.value("status", "") : "";
      if (s == "completed" || s == "aborted" || s == "failed") return r.body;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "migration " << id << " did not finish";
    return {};
  }

  TempDir dir_;
  Rng rng_{123};
  std::unique_ptr<System> sys_;
  std::unique_ptr<HttpApi> api_;
};

}  // namespace regionmove::testing
