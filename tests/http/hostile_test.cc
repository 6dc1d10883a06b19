// The request surface as a hostile client meets it (issue: nothing a client sends can crash,
// wedge or mislead the server). Every test goes through real HTTP on a running server; raw
// sockets send what a well-behaved client library never would.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http_server.h"
#include "http/http_util.h"

namespace regionmove::testing {
namespace {

using nlohmann::json;
const std::string kAlice = "alice-token", kBob = "bob-token";

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until the peer closes, what arrived contains `until` (when given), or `timeout_ms`
// passes; returns what arrived.
std::string ReadAll(int fd, int timeout_ms = 5000, const std::string& until = "") {
  std::string out;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while ((until.empty() || out.find(until) == std::string::npos) &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

struct RawReply {
  int status = 0;
  std::string head, body;
};

// Sends `request` as is (it should say Connection: close) and parses the answer.
RawReply Raw(int port, const std::string& request) {
  RawReply r;
  int fd = Connect(port);
  if (fd < 0) return r;
  (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string all = ReadAll(fd);
  ::close(fd);
  size_t sp = all.find(' ');
  if (sp != std::string::npos) r.status = std::atoi(all.c_str() + sp + 1);
  size_t end = all.find("\r\n\r\n");
  r.head = all.substr(0, end);
  if (end != std::string::npos) r.body = all.substr(end + 4);
  return r;
}

std::string Request(const std::string& method, const std::string& path, const std::string& body,
                    const std::string& extra_headers = "") {
  return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kAlice +
         "\r\nConnection: close\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Percent-encodes all but unreserved characters and '/'.
std::string Encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

class Hostile : public HttpFixture {
 protected:
  void SetUp() override { StartServer("", "max_body_bytes = 65536\n"); }
};

TEST_F(Hostile, TextThatIsNotUtf8IsRefusedAndNothingIsStored) {
  std::string app = CreateApp(kAlice);
  std::string base = "/v1/apps/" + app;
  RawReply put = Raw(api_->port(), Request("PUT", base + "/blobs/%c0%ae", "x"));
  EXPECT_EQ(put.status, 400) << put.head;
  EXPECT_NE(put.body.find("UTF-8"), std::string::npos) << put.body;
  EXPECT_EQ(Raw(api_->port(), Request("PUT", base + "/blobs/a%ffb", "x")).status, 400);
  EXPECT_EQ(Raw(api_->port(), Request("GET", base + "/blobs?prefix=%fe", "")).status, 400);
  EXPECT_EQ(
      Raw(api_->port(), Request("PUT", base + "/blobs/ok", "x", "Content-Type: text/\xff\r\n"))
          .status,
      400);
  // Invalid UTF-8 inside a JSON string: 400 invalid_json, and the answer is valid JSON.
  RawReply bad_json =
      Raw(api_->port(),
          Request("POST", "/v1/apps", "{\"name\":\"a\xc0\xae\",\"region\":\"us-east-1\"}"));
  EXPECT_EQ(bad_json.status, 400);
  json parsed = json::parse(bad_json.body, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << bad_json.body;
  EXPECT_EQ(parsed["error"], "invalid_json");
  // Nothing was stored: the blob list is empty and answers 200.
  HttpReply list = Call("GET", base + "/blobs", kAlice);
  ASSERT_EQ(list.status, 200) << list.raw;
  EXPECT_TRUE(list.body["blobs"].empty());
  EXPECT_EQ(Call("GET", "/v1/apps", kAlice).body["apps"].size(), 1u);
}

TEST_F(Hostile, MalformedInputIsA400WithoutInternalText) {
  std::string app = CreateApp(kAlice);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"overflowing float", Request("POST", "/v1/apps", R"({"name":1e999999,"region":"x"})")},
      {"5000 digits", Request("POST", "/v1/apps",
                              "{\"name\":\"a\",\"region\":\"us-east-1\",\"subdomain\":" +
                                  std::string(5000, '9') + "}")},
      {"overflow in a row", Request("POST", "/v1/apps/" + app + "/tables/t", R"({"n":-1e400})")},
      {"Content-Length abc",
       "POST /v1/apps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
       "Content-Length: abc\r\n\r\n{}"},
      {"negative Content-Length",
       "POST /v1/apps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
       "Content-Length: -1\r\n\r\n{}"},
      {"truncated JSON", Request("POST", "/v1/apps", "{\"name\": ")},
      {"JSON not an object", Request("POST", "/v1/apps/" + app + "/move", "[1,2]")},
      {"abort body not an object", Request("POST", "/v1/apps/" + app + "/migrations/x/abort", "7")},
      {"limit not a number", Request("GET", "/v1/apps/" + app + "/blobs?limit=1e9", "")},
      {"limit too large", Request("GET", "/v1/apps/" + app + "/blobs?limit=99999999999", "")},
      {"garbage request line", "\x01\x02 nonsense\r\n\r\n"},
  };
  for (const auto& [what, request] : cases) {
    RawReply r = Raw(api_->port(), request);
    EXPECT_GE(r.status, 400) << what << ": " << r.head;
    EXPECT_LT(r.status, 500) << what << ": " << r.body;
    EXPECT_EQ(r.body.find("stoll"), std::string::npos) << what << ": " << r.body;
    EXPECT_EQ(r.body.find("stoi"), std::string::npos) << what << ": " << r.body;
    EXPECT_EQ(r.body.find("[json.exception"), std::string::npos) << what << ": " << r.body;
  }
  // Chunked bodies over the limit are 413, as declared ones are.
  std::string chunk(40000, 'a');
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", chunk.size());
  std::string chunked =
      "POST /v1/apps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Authorization: Bearer " +
      kAlice + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += std::string(size) + "\r\n" + chunk + "\r\n";
  chunked += "0\r\n\r\n";
  RawReply big = Raw(api_->port(), chunked);
  EXPECT_EQ(big.status, 413) << big.head;
  EXPECT_NE(big.body.find("payload_too_large"), std::string::npos) << big.body;
  EXPECT_EQ(Call("GET", "/v1/apps", kAlice).body["apps"].size(), 1u);  // nothing created
}

TEST_F(Hostile, UnknownFieldsAreRefusedWithASuggestionAndChangeNothing) {
  std::string app = CreateApp(kAlice);
  HttpReply move = Json("POST", "/v1/apps/" + app + "/move", kAlice,
                        {{"dest_region", "eu-west-1"}, {"dryrun", true}});
  EXPECT_EQ(move.status, 400) << move.raw;
  EXPECT_EQ(move.body["error"], "invalid_request");
  EXPECT_NE(move.body["message"].get<std::string>().find("'dryrun' (did you mean 'dry_run'?)"),
            std::string::npos)
      << move.raw;
  EXPECT_TRUE(
      Call("GET", "/v1/apps/" + app + "/migrations/active", kAlice).body["migration"].is_null());
  HttpReply create = Json("POST", "/v1/apps", kAlice,
                          {{"name", "x"}, {"region", "us-east-1"}, {"subdomian", "mine"}});
  EXPECT_EQ(create.status, 400);
  EXPECT_NE(create.raw.find("did you mean 'subdomain'"), std::string::npos) << create.raw;
  EXPECT_EQ(Call("GET", "/v1/apps", kAlice).body["apps"].size(), 1u);
  for (const auto& [path, body] : std::vector<std::pair<std::string, json>>{
           {"/functions/f", {{"entrypoint", "m"}, {"runtime", "node"}, {"code", "x"}, {"cod", 1}}},
           {"/env/K", {{"value", "v"}, {"secrte", true}}},
           {"/domains/shop.example.com", {{"host", "x"}}},
       }) {
    HttpReply r = Json("PUT", "/v1/apps/" + app + path, kAlice, body);
    EXPECT_EQ(r.status, 400) << path << " " << r.raw;
  }
  HttpReply table = Json("POST", "/v1/apps/" + app + "/tables", kAlice,
                         {{"name", "t"}, {"columns", {{{"name", "a"}, {"typ", "text"}}}}});
  EXPECT_EQ(table.status, 400) << table.raw;
  EXPECT_NE(table.raw.find("did you mean 'type'"), std::string::npos) << table.raw;
}

TEST_F(Hostile, JsonSentAsCurlSendsItIsReadAsJson) {
  std::string app = CreateApp(kAlice);
  ASSERT_EQ(Json("POST", "/v1/apps/" + app + "/tables", kAlice,
                 {{"name", "t"}, {"columns", {{{"name", "note"}, {"type", "text"}}}}})
                .status,
            201);
  json rows = json::array();
  for (int i = 0; i < 100; ++i) rows.push_back({{"note", std::string(200, 'a' + i % 26)}});
  std::string body = rows.dump();
  ASSERT_GT(body.size(), 8192u);
  HttpReply r = Call("POST", "/v1/apps/" + app + "/tables/t", kAlice, body,
                     "application/x-www-form-urlencoded");
  EXPECT_EQ(r.status, 201) << r.raw.substr(0, 300);
  EXPECT_EQ(r.body["rows"].size(), 100u);
}

TEST_F(Hostile, ATenantCannotTakeAnotherTenantsHostname) {
  std::string alice = CreateApp(kAlice);
  std::string bob = CreateApp(kBob, "us-east-1", "bobshop");
  const std::string base = "/v1/apps/" + alice + "/domains/";
  for (const std::string& host : std::vector<std::string>{
           "bobshop.apps.localhost", "notyet.apps.localhost", "apps.localhost", "Shop.Example.com",
           "shop.example.com.", "1.2.3.4", "-bad.example.com", "a..example.com",
           "ab--cd.example.com", "localhost", std::string(64, 'a') + ".example.com"}) {
    HttpReply r = Call("PUT", base + host, kAlice);
    EXPECT_EQ(r.status, 400) << host << ": " << r.raw;
    EXPECT_EQ(r.body.value("error", ""), "invalid_domain") << host;
  }
  EXPECT_EQ(Call("PUT", base + "xn--bcher-kva.example", kAlice).status, 201);
  HttpReply taken = Call("PUT", "/v1/apps/" + bob + "/domains/xn--bcher-kva.example", kBob);
  EXPECT_EQ(taken.status, 409) << taken.raw;
  EXPECT_EQ(taken.body["error"], "domain_taken");
  // Bob's subdomain still serves Bob's app.
  httplib::Client c("127.0.0.1", api_->port());
  auto r =
      c.Get("/blobs", {{"Host", "bobshop.apps.localhost"}, {"Authorization", "Bearer " + kBob}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(Hostile, WrongMethodsAre405WithAllowAndHeadWorks) {
  std::string app = CreateApp(kAlice);
  struct Case {
    std::string method, path, allow_has;
  } cases[] = {
      {"DELETE", "/v1/regions", "GET"},
      {"POST", "/healthz", "GET"},
      {"PUT", "/v1/apps", "POST"},
      {"PATCH", "/v1/apps/" + app + "/blobs/k", "PUT"},
      {"POST", "/v1/apps/" + app + "/env", "GET"},
      {"PATCH", "/v1/apps/" + app + "/functions/f", "PUT"},
      {"PUT", "/v1/apps/" + app + "/tables", "POST"},
      {"GET", "/v1/apps/" + app + "/move", "POST"},
  };
  for (const auto& c : cases) {
    HttpReply r = Call(c.method, c.path, kAlice, "{}");
    EXPECT_EQ(r.status, 405) << c.method << " " << c.path << ": " << r.raw;
    EXPECT_NE(r.Header("Allow").find(c.allow_has), std::string::npos)
        << c.method << " " << c.path << " Allow: " << r.Header("Allow");
  }
  EXPECT_EQ(Call("GET", "/v1/no-such-thing", kAlice).status, 404);
  EXPECT_EQ(Call("GET", "/v1/admin/debris", kAlice).status, 403);
  HttpReply debris = Call("GET", "/v1/admin/debris", "admin-token");
  EXPECT_EQ(debris.status, 200);
  EXPECT_TRUE(debris.body["debris"].is_array());
  ASSERT_EQ(Call("PUT", "/v1/apps/" + app + "/blobs/k", kAlice, "hello", "text/plain").status, 201);
  httplib::Client c("127.0.0.1", api_->port());
  httplib::Headers auth = {{"Authorization", "Bearer " + kAlice}};
  auto head = c.Head(("/v1/apps/" + app + "/blobs/k").c_str(), auth);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->get_header_value("Content-Length"), "5");
  auto regions = c.Head("/v1/regions");
  ASSERT_TRUE(regions);
  EXPECT_EQ(regions->status, 200);
}

TEST_F(Hostile, MetricsLabelsCannotBeBrokenByAUrl) {
  for (const char* path : {"/%22", "/a%22b%5C%0A", "/v1/%22}", "/random/path/here"}) {
    Call("GET", path, "");
  }
  HttpReply m = Call("GET", "/metrics", "");
  ASSERT_EQ(m.status, 200);
  std::istringstream lines(m.raw);
  std::string line;
  int checked = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("regionmove_http_requests_total{", 0) != 0) continue;
    ++checked;
    // route="METHOD template",code="NNN"} value: exactly four quotes, no backslash, no newline.
    EXPECT_EQ(std::count(line.begin(), line.end(), '"'), 4) << line;
    EXPECT_EQ(line.find('\\'), std::string::npos) << line;
  }
  EXPECT_GT(checked, 0);
  EXPECT_NE(m.raw.find("route=\"GET other\""), std::string::npos);
}

TEST_F(Hostile, OneTenantCannotEvictAnotherTenantsMcpSessions) {
  auto initialize = [&](const std::string& token) {
    HttpReply r = Call("POST", "/mcp", token,
                       R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":)"
                       R"({"protocolVersion":"2025-06-18","capabilities":{},)"
                       R"("clientInfo":{"name":"t","version":"1"}}})",
                       "application/json", {{"Accept", "application/json, text/event-stream"}});
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.Header("Mcp-Session-Id");
  };
  std::string bob = initialize(kBob);
  ASSERT_FALSE(bob.empty());
  std::string first_alice = initialize(kAlice);
  for (int i = 0; i < 100; ++i) initialize(kAlice);
  auto list = [&](const std::string& token, const std::string& session) {
    return Call("POST", "/mcp", token, R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})",
                "application/json", {{"Mcp-Session-Id", session}});
  };
  HttpReply bobs = list(kBob, bob);
  EXPECT_EQ(bobs.status, 200) << bobs.raw;
  EXPECT_TRUE(bobs.body.contains("result"));
  // Alice's own oldest session made room for her newest ones.
  EXPECT_EQ(list(kAlice, first_alice).status, 404);
}

TEST_F(Hostile, McpArgumentsOutsideTheSchemaAreRefused) {
  std::string app = CreateApp(kAlice);
  HttpReply init = Call("POST", "/mcp", kAlice,
                        R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":)"
                        R"({"protocolVersion":"2025-06-18","capabilities":{},)"
                        R"("clientInfo":{"name":"t","version":"1"}}})");
  std::string session = init.Header("Mcp-Session-Id");
  json call = {
      {"jsonrpc", "2.0"},
      {"id", 3},
      {"method", "tools/call"},
      {"params",
       {{"name", "move_app"},
        {"arguments", {{"app_id", app}, {"dest_region", "eu-west-1"}, {"dryrun", true}}}}}};
  HttpReply r =
      Call("POST", "/mcp", kAlice, call.dump(), "application/json", {{"Mcp-Session-Id", session}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_TRUE(r.body["result"]["isError"]);
  EXPECT_NE(r.raw.find("did you mean 'dry_run'"), std::string::npos) << r.raw;
  EXPECT_TRUE(
      Call("GET", "/v1/apps/" + app + "/migrations/active", kAlice).body["migration"].is_null());
}

TEST_F(Hostile, ASecondServerOnAPortInUseFailsClearly) {
  HttpServer second;
  Status s = second.Listen("127.0.0.1", api_->port());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("127.0.0.1:" + std::to_string(api_->port()) + " is in use"),
            std::string::npos)
      << s.message();
  HttpServer elsewhere;
  Status remote = elsewhere.Listen("192.0.2.1", 0);  // TEST-NET-1: never this machine's
  ASSERT_FALSE(remote.ok());
  EXPECT_NE(remote.message().find("not an address of this machine"), std::string::npos)
      << remote.message();
  EXPECT_EQ(Call("GET", "/healthz", "").status, 200);  // the first one serves on
}

TEST_F(Hostile, AMoveOfEverythingTheApiAcceptedCompletes) {
  std::string app = CreateApp(kAlice);
  std::string base = "/v1/apps/" + app;
  // Edge-of-valid input of every kind the API stores.
  const std::vector<std::string> keys = {
      "ünïcødé/файл 1.txt",  "emoji/😀.png", "a b/c+d=e&f", "%41%2F", "dir/./x", "dir//y",
      std::string(1024, 'k')};
  for (const auto& key : keys) {
    std::string path = base + "/blobs/" + Encode(key);
    HttpReply r = Call("PUT", path, kAlice, "data of " + key, "text/plain; charset=utf-8");
    ASSERT_EQ(r.status, 201) << key << ": " << r.raw;
  }
  ASSERT_EQ(Call("PUT", base + "/blobs/big", kAlice, std::string(60000, '\xff'),
                 "application/octet-stream")
                .status,
            201);
  ASSERT_EQ(Json("POST", base + "/tables", kAlice,
                 {{"name", "Ünused_ok"}, {"columns", {{{"name", "a"}, {"type", "text"}}}}})
                .status,
            400);  // names are ASCII identifiers
  ASSERT_EQ(Json("POST", base + "/tables", kAlice,
                 {{"name", "t"},
                  {"columns",
                   {{{"name", "txt"}, {"type", "text"}},
                    {{"name", "doc"}, {"type", "json"}},
                    {{"name", "n"}, {"type", "integer"}},
                    {{"name", "r"}, {"type", "real"}}}}})
                .status,
            201);
  HttpReply rows =
      Json("POST", base + "/tables/t", kAlice,
           json::array({{{"id", "ключ"},
                         {"txt", "日本語 \u0001 tab\t"},
                         {"doc", {{"😀", {1, 2}}}},
                         {"n", 9007199254740993LL},
                         {"r", 1e308}},
                        {{"txt", ""}, {"doc", nullptr}, {"n", -9223372036854775807LL - 1}}}));
  ASSERT_EQ(rows.status, 201) << rows.raw;
  ASSERT_EQ(Json("PUT", base + "/functions/fn-1", kAlice,
                 {{"entrypoint", "main"}, {"runtime", "node20"}, {"code", "// ünïcødé 😀\n"}})
                .status,
            201);
  ASSERT_EQ(Json("PUT", base + "/env/SECRET_1", kAlice, {{"value", "pässwörd😀"}, {"secret", true}})
                .status,
            201);
  ASSERT_EQ(
      Json("PUT", base + "/cron/nightly", kAlice, {{"schedule", "0 3 * * *"}, {"function", "fn-1"}})
          .status,
      201);
  ASSERT_EQ(Call("PUT", base + "/domains/xn--caf-dma.example.com", kAlice).status, 201);
  auto before = Capture(*sys_, "us-east-1", app);

  HttpReply move = Json("POST", base + "/move", kAlice, {{"dest_region", "eu-west-1"}});
  ASSERT_EQ(move.status, 202) << move.raw;
  json done = WaitDone(kAlice, app, move.body["migration_id"]);
  ASSERT_EQ(done.value("status", ""), "completed") << done.dump();
  EXPECT_TRUE(before == Capture(*sys_, "eu-west-1", app));
  HttpReply list = Call("GET", base + "/blobs?limit=1000", kAlice);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body["blobs"].size(), keys.size() + 1);
  HttpReply got = Call("GET", base + "/blobs/" + Encode(keys[1]), kAlice);
  EXPECT_EQ(got.raw, "data of " + keys[1]);
}

class SlowClients : public HttpFixture {
 protected:
  void SetUp() override { StartServer("", "max_connections = 60\nheader_timeout_seconds = 2\n"); }
};

TEST_F(SlowClients, FiftySlowConnectionsDoNotStarveHealthz) {
  std::vector<int> slow;
  for (int i = 0; i < 50; ++i) {
    int fd = Connect(api_->port());
    ASSERT_GE(fd, 0);
    (void)!::send(fd, "GET /healthz HTTP/1.1\r\nHo", 25, MSG_NOSIGNAL);
    slow.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the server take them all
  httplib::Client c("127.0.0.1", api_->port());
  c.set_connection_timeout(1);
  c.set_read_timeout(1);  // the bound of the issue: answered within a second
  auto r = c.Get("/healthz");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  for (int fd : slow) ::close(fd);
}

TEST_F(SlowClients, HeadersTrickledByteByByteAreCutAtTheDeadline) {
  int fd = Connect(api_->port());
  ASSERT_GE(fd, 0);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  auto start = std::chrono::steady_clock::now();
  bool cut = false;
  for (int i = 0; i < 40 && !cut; ++i) {  // one byte every 200 ms: 8 s unless cut
    ssize_t n = ::send(fd, request.data() + (i % request.size()), 1, MSG_NOSIGNAL);
    pollfd p{fd, POLLIN, 0};
    if (n < 0 || (::poll(&p, 1, 200) > 0)) cut = true;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(cut) << "the connection was still open after " << secs << " s";
  EXPECT_LT(secs, 7.0);  // deadline 2 s; generous for a loaded machine
  ::close(fd);
}

TEST_F(SlowClients, ConnectionsOverTheCapAreAnswered503) {
  std::vector<int> held;
  for (int i = 0; i < 60; ++i) {
    int fd = Connect(api_->port());
    ASSERT_GE(fd, 0);
    held.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  RawReply over =
      Raw(api_->port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(over.status, 503) << over.head;
  for (int fd : held) ::close(fd);
  // Once they are gone, the server answers again.
  bool ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    ok =
        Raw(api_->port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status ==
        200;
    if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace regionmove::testing

namespace regionmove::testing {
namespace {

bool ParkWaitUntil(const std::function<bool()>& cond, int timeout_ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Long polls park without a thread: bounded (the handler answers itself past the bound), a
// client that leaves is dropped, and an answered one goes on serving its connection.
TEST(Parking, ParkedRequestsAreBoundedAnsweredAndDroppedWithTheirClient) {
  HttpLimits limits;
  limits.max_parked = 2;
  limits.max_connections = 2;
  HttpServer server(limits);
  std::atomic<bool> ready{false};
  server.Get("/wait", [&](const httplib::Request&, httplib::Response& res) {
    ParkedRequest p;
    p.deadline_ms = HttpServer::SteadyNowMs() + 10000;
    p.answer = [&](bool timed_out) -> std::optional<std::string> {
      if (!ready.load() && !timed_out) return std::nullopt;
      return std::string("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready");
    };
    if (!server.Park(std::move(p))) res.set_content("full", "text/plain");
  });
  server.Get("/now", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("now!", "text/plain");
  });
  ASSERT_OK(server.Listen("127.0.0.1", 0));
  const std::string wait = "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string now = "GET /now HTTP/1.1\r\nHost: x\r\n\r\n";
  int a = Connect(server.port()), b = Connect(server.port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_EQ(::send(a, wait.data(), wait.size(), 0), static_cast<ssize_t>(wait.size()));
  ASSERT_EQ(::send(b, wait.data(), wait.size(), 0), static_cast<ssize_t>(wait.size()));
  ASSERT_TRUE(ParkWaitUntil([&] { return server.parked_requests() == 2; }));
  // Both connection threads are free again (max_connections = 2): a third is served...
  int c = Connect(server.port());
  ASSERT_EQ(::send(c, now.data(), now.size(), 0), static_cast<ssize_t>(now.size()));
  EXPECT_NE(ReadAll(c, 5000, "now!").find("now!"), std::string::npos);
  // ... and a third wait past the bound is answered by its handler at once.
  ASSERT_EQ(::send(c, wait.data(), wait.size(), 0), static_cast<ssize_t>(wait.size()));
  EXPECT_NE(ReadAll(c, 5000, "full").find("full"), std::string::npos);
  ::close(c);
  // A parked client that leaves is dropped.
  ::close(b);
  EXPECT_TRUE(ParkWaitUntil([&] { return server.parked_requests() == 1; }));
  // The answer comes when it is ready, and the connection serves on.
  ready = true;
  server.WakeParked();
  EXPECT_NE(ReadAll(a, 2000, "ready").find("ready"), std::string::npos);
  EXPECT_EQ(server.parked_requests(), 0);
  ASSERT_EQ(::send(a, now.data(), now.size(), 0), static_cast<ssize_t>(now.size()));
  EXPECT_NE(ReadAll(a, 5000, "now!").find("now!"), std::string::npos);
  ::close(a);
  server.Shutdown();
}

}  // namespace
}  // namespace regionmove::testing
