// The JSON-RPC / MCP layer on malformed and hostile input: an error every time, never a crash.
#include <set>

#include "api/mcp/mcp.h"
#include "test_util.h"

namespace regionmove {
namespace {

using nlohmann::json;

class FakeBackend final : public McpBackend {
 public:
  std::vector<std::string> calls;
  ToolOutcome Ok(const std::string& what) {
    calls.push_back(what);
    return {false, {{"called", what}}};
  }
  ToolOutcome ListRegions() override { return Ok("regions"); }
  ToolOutcome ListApps() override { return Ok("apps"); }
  ToolOutcome ListMigrations(const std::string& a) override { return Ok("list " + a); }
  ToolOutcome MoveApp(const std::string& a, const std::string& d, const std::string&,
                      bool dry) override {
    return Ok("move " + a + " " + d + (dry ? " dry" : ""));
  }
  ToolOutcome Status(const std::string& a, const std::string& m) override {
    return Ok("status " + a + " " + m);
  }
  ToolOutcome GetActive(const std::string& a) override { return Ok("active " + a); }
  ToolOutcome Abort(const std::string&, const std::string&) override {
    calls.push_back("abort");
    return {true, {{"error", "cutover_passed"}, {"message", "use reverse"}}};
  }
  ToolOutcome Reverse(const std::string& a, const std::string& m) override {
    return Ok("reverse " + a + " " + m);
  }
  ToolOutcome ListReplicas() override { return Ok("replicas"); }
  ToolOutcome Teardown(const std::string& m) override { return Ok("teardown " + m); }
};

class McpJsonRpc : public ::testing::Test {
 protected:
  json Send(const std::string& text) {
    auto r = session_.Handle(text);
    EXPECT_TRUE(r.has_value()) << text;
    return r.value_or(json());
  }
  json Call(const std::string& tool, const json& args) {
    return Send(json{{"jsonrpc", "2.0"},
                     {"id", 7},
                     {"method", "tools/call"},
                     {"params", {{"name", tool}, {"arguments", args}}}}
                    .dump());
  }
  void Init(const std::string& version = "2025-06-18") {
    json r = Send(json{{"jsonrpc", "2.0"},
                       {"id", 1},
                       {"method", "initialize"},
                       {"params",
                        {{"protocolVersion", version},
                         {"capabilities", json::object()},
                         {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}}
                      .dump());
    ASSERT_TRUE(r.contains("result")) << r.dump();
    EXPECT_FALSE(session_.Handle(R"({"jsonrpc":"2.0","method":"notifications/initialized"})"));
  }
  FakeBackend backend_;
  McpSession session_{&backend_};
};

TEST_F(McpJsonRpc, MalformedInputGetsJsonRpcErrors) {
  struct Case {
    std::string in;
    int code;
  } cases[] = {
      {"not json", -32700},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,", -32700},
      {"", -32700},
      {"[]", -32600},
      {R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", -32600},
      {"42", -32600},
      {"\"str\"", -32600},
      {"null", -32600},
      {R"({"jsonrpc":"1.0","id":1,"method":"ping"})", -32600},
      {R"({"id":1,"method":"ping"})", -32600},
      {R"({"jsonrpc":"2.0","id":1})", -32600},
      {R"({"jsonrpc":"2.0","id":1,"method":5})", -32600},
      {R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})", -32600},
      {R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})", -32600},
      {R"({"jsonrpc":"2.0","id":true,"method":"ping"})", -32600},
      {R"({"jsonrpc":"2.0","id":1,"method":"nope"})", -32601},
      {R"({"jsonrpc":"2.0","id":1,"method":"initialize"})", -32602},
      {R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":[1]})", -32602},
      {R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":7}})", -32602},
      {R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})", -32600},  // before initialize
  };
  for (const auto& c : cases) {
    json r = Send(c.in);
    ASSERT_TRUE(r.contains("error")) << c.in << " -> " << r.dump();
    EXPECT_EQ(r["error"]["code"], c.code) << c.in << " -> " << r.dump();
    EXPECT_EQ(r["jsonrpc"], "2.0");
  }
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(McpJsonRpc, IdsAreEchoedExactlyEvenHuge) {
  Init();
  for (const std::string& id :
       std::vector<std::string>{"\"abc\"", "0", "-5", "9223372036854775807", "18446744073709551615",
                                "\"" + std::string(10000, 'x') + "\""}) {
    json r = Send(R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"ping"})");
    EXPECT_EQ(r["id"], json::parse(id)) << id;
    EXPECT_TRUE(r.contains("result"));
  }
  // Beyond 64 bits the number is not an integer id.
  json big = Send(R"({"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"})");
  EXPECT_EQ(big["error"]["code"], -32600);
}

TEST_F(McpJsonRpc, NotificationsGetNoAnswer) {
  EXPECT_FALSE(session_.Handle(R"({"jsonrpc":"2.0","method":"notifications/whatever"})"));
  EXPECT_FALSE(session_.Handle(R"({"jsonrpc":"2.0","method":"tools/call"})"));
  EXPECT_FALSE(session_.Handle(R"({"jsonrpc":"2.0","id":3,"result":{}})"));  // a client response
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(McpJsonRpc, VersionNegotiation) {
  json r = Send(
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05"}})");
  EXPECT_EQ(r["result"]["protocolVersion"], "2024-11-05");
  McpSession other(&backend_);
  json r2 = *other.Handle(
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"1999-01-01"}})");
  EXPECT_EQ(r2["result"]["protocolVersion"], McpProtocolVersions().front());
  EXPECT_EQ(r2["result"]["serverInfo"]["name"], "regionmove");
  EXPECT_TRUE(r2["result"]["capabilities"].contains("tools"));
}

TEST_F(McpJsonRpc, ToolsHaveSchemasAnnotationsAndDescriptions) {
  Init();
  json r = Send(R"({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}})");
  const json& tools = r["result"]["tools"];
  std::set<std::string> names;
  for (const auto& t : tools) {
    names.insert(t["name"]);
    EXPECT_EQ(t["inputSchema"]["type"], "object") << t["name"];
    EXPECT_TRUE(t["annotations"].contains("readOnlyHint"));
    EXPECT_TRUE(t["annotations"].contains("destructiveHint"));
    EXPECT_TRUE(t["annotations"].contains("idempotentHint"));
    EXPECT_GT(t["description"].get<std::string>().size(), 100u) << t["name"];
    EXPECT_FALSE(t["title"].get<std::string>().empty());
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"list_regions", "list_apps", "move_app", "move_app_status",
                                   "manage_migrations", "teardown_source_replica"}));
  for (const auto& t : tools) {
    if (t["name"] == "teardown_source_replica") {
      EXPECT_TRUE(t["annotations"]["destructiveHint"]);
    }
    if (t["name"] == "list_regions") {
      EXPECT_TRUE(t["annotations"]["readOnlyHint"]);
    }
  }
}

TEST_F(McpJsonRpc, ToolCallsAndArgumentErrors) {
  Init();
  json ok =
      Call("move_app", {{"app_id", "app_a"}, {"dest_region", "eu-west-1"}, {"dry_run", true}});
  EXPECT_EQ(ok["result"]["isError"], false);
  EXPECT_EQ(ok["result"]["structuredContent"]["called"], "move app_a eu-west-1 dry");
  EXPECT_EQ(ok["result"]["content"][0]["type"], "text");
  json missing = Call("move_app", {{"app_id", "app_a"}});
  EXPECT_EQ(missing["result"]["isError"], true);
  EXPECT_NE(
      missing["result"]["structuredContent"]["message"].get<std::string>().find("dest_region"),
      std::string::npos);
  json typed = Call("move_app_status", {{"app_id", 5}, {"migration_id", "m"}});
  EXPECT_NE(typed["result"]["structuredContent"]["message"].get<std::string>().find("app_id"),
            std::string::npos);
  json no_action = Call("manage_migrations", json::object());
  EXPECT_NE(no_action["result"]["structuredContent"]["message"].get<std::string>().find("action"),
            std::string::npos);
  json bad_action = Call("manage_migrations", {{"action", "explode"}});
  EXPECT_EQ(bad_action["result"]["isError"], true);
  json abort_needs = Call("manage_migrations", {{"action", "abort"}, {"app_id", "a"}});
  EXPECT_NE(
      abort_needs["result"]["structuredContent"]["message"].get<std::string>().find("migration_id"),
      std::string::npos);
  json api_error =
      Call("manage_migrations", {{"action", "abort"}, {"app_id", "a"}, {"migration_id", "m"}});
  EXPECT_EQ(api_error["result"]["isError"], true);
  EXPECT_EQ(api_error["result"]["structuredContent"]["error"], "cutover_passed");
  json unknown = Call("fly", json::object());
  EXPECT_EQ(unknown["error"]["code"], -32602);
  json bad_args = Send(
      R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list_regions","arguments":[1]}})");
  EXPECT_EQ(bad_args["error"]["code"], -32602);
  json no_name = Send(R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{}})");
  EXPECT_EQ(no_name["error"]["code"], -32602);
  EXPECT_EQ(backend_.calls.size(), 2u);  // the dry run and the abort
}

TEST_F(McpJsonRpc, DeeplyNestedInputDoesNotCrash) {
  std::string deep(100000, '[');
  json r = Send(deep);
  EXPECT_TRUE(r.contains("error"));
  std::string deep_obj = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":)" +
                         std::string(5000, '[') + std::string(5000, ']') + "}}";
  EXPECT_EQ(Send(deep_obj)["error"]["code"], -32700);
  // Brackets inside strings are not nesting.
  std::string in_string = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":")" +
                          std::string(5000, '[') + R"("}})";
  EXPECT_TRUE(Send(in_string).contains("result"));
}

}  // namespace
}  // namespace regionmove
