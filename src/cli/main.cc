// regionmove command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "cli/client.h"
#include "cli/demo.h"
#include "cli/edge.h"
#include "cli/mcp_stdio.h"
#include "cli/serve.h"
#include "common/text.h"
#include "config/config.h"
#include "dataplane/engines.h"

namespace regionmove {
namespace {

int PrintConfig(const std::string& config_path) {
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "regionmove: " << config.status().message() << "\n";
    return 2;
  }
  std::cout << "config: " << config->source << "\n"
            << "data_dir: " << config->data_dir << "\n"
            << "control store: " << config->control_store_engine << " "
            << (config->control_store_engine == "sqlite" ? config->control_store_path
                                                         : config->control_store_dsn)
            << "\nregions:\n";
  for (const auto& r : config->regions) {
    std::cout << "  " << r.slug << "  " << r.name << "  (" << r.status << ", database "
              << r.database.engine << ", blobs " << r.blobs.engine << ")\n";
  }
  return 0;
}

// After a parse error: the first word that is not a command at a level that needs one, with the
// nearest command's name ("regionmove mvoe" -> did you mean 'move'?). Returns false when the
// error is of another kind.
bool SuggestCommand(CLI::App& app, int argc, char** argv) {
  CLI::App* level = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind('-', 0) == 0) {
      // Skip an option's value given as the next word.
      const CLI::Option* o = level->get_option_no_throw(arg.substr(0, arg.find('=')));
      if (!o) o = app.get_option_no_throw(arg.substr(0, arg.find('=')));
      if (o && o->get_type_size_min() > 0 && arg.find('=') == std::string::npos) ++i;
      continue;
    }
    std::vector<std::string> names;
    CLI::App* next = nullptr;
    for (CLI::App* sub : level->get_subcommands([](CLI::App*) { return true; })) {
      names.push_back(sub->get_name());
      if (sub->get_name() == arg) next = sub;
    }
    if (next) {
      level = next;
      continue;
    }
    if (names.empty() || level->get_require_subcommand_min() == 0) return false;
    std::string prefix = level == &app ? "regionmove" : "regionmove " + level->get_name();
    std::cerr << prefix << ": unknown command '" << arg << "'" << DidYouMean(arg, names)
              << "\nRun '" << prefix << " --help' for the commands.\n";
    return true;
  }
  return false;
}

}  // namespace
}  // namespace regionmove

int main(int argc, char** argv) {
  regionmove::RegisterBuiltinEngines();
  CLI::App app{"regionmove: move a tenant app between regions, safely"};
  app.set_version_flag("--version", "regionmove 0.1.0");
  app.require_subcommand(1);
  app.fallthrough();  // --config may follow the subcommand: `regionmove serve --config FILE`
  std::string config_path;
  app.add_option("--config", config_path,
                 "configuration file (TOML); the embedded default if absent");

  auto* config_cmd = app.add_subcommand("config", "validate the configuration and print it");
  auto* version_cmd = app.add_subcommand("version", "print the version");
  auto* demo_cmd = app.add_subcommand("demo", "move a demo app around the embedded regions");
  int demo_rows = 5000, demo_blob_mib = 4;
  demo_cmd->add_option("--rows", demo_rows, "rows per table")->check(CLI::Range(1, 1000000));
  demo_cmd->add_option("--blob-mib", demo_blob_mib, "size of each of the two large blobs")
      ->check(CLI::Range(1, 1024));

  auto* serve_cmd = app.add_subcommand("serve", "run the REST API server with saga workers");
  std::string listen;
  serve_cmd->add_option("--listen", listen, "host:port (default: server.listen of the config)");
  bool no_workers = false;
  serve_cmd->add_flag("--no-workers", no_workers,
                      "answer the API only; `regionmove worker` processes run the migrations");
  auto* worker_cmd = app.add_subcommand("worker", "run saga workers only (no HTTP)");

  auto* mcp_cmd = app.add_subcommand("mcp", "MCP server on stdio (for agents)");
  std::string mcp_user, mcp_server, mcp_token;
  if (const char* s = std::getenv("REGIONMOVE_SERVER")) mcp_server = s;
  if (const char* t = std::getenv("REGIONMOVE_TOKEN")) mcp_token = t;
  mcp_cmd->add_option("--user", mcp_user, "in-process mode: act as this configured user");
  mcp_cmd->add_option("--server", mcp_server, "client mode: the regionmove server URL");
  mcp_cmd->add_option("--token", mcp_token, "client mode: bearer token");

  auto* edge_cmd = app.add_subcommand("edge", "keep a platform edge in step with the routing feed");
  edge_cmd->require_subcommand(1);
  auto* nginx_cmd = edge_cmd->add_subcommand(
      "nginx", "render nginx maps of $host to region upstreams and write blocks, and follow them");
  regionmove::EdgeOptions edge;
  bool edge_snippet = false;
  if (const char* s = std::getenv("REGIONMOVE_SERVER")) edge.server = s;
  if (const char* t = std::getenv("REGIONMOVE_TOKEN")) edge.token = t;
  nginx_cmd->add_option("--server", edge.server, "the regionmove server URL (REGIONMOVE_SERVER)");
  nginx_cmd->add_option("--token", edge.token,
                        "an admin token or an edge user's (REGIONMOVE_TOKEN)");
  nginx_cmd->add_option("--out", edge.out, "the map file to keep (nginx includes it)");
  nginx_cmd->add_option("--reload-cmd", edge.reload_cmd,
                        "run after the file changed, e.g. \"nginx -s reload\"");
  nginx_cmd->add_flag("--once", edge.once, "render the current routing once and exit");
  nginx_cmd->add_option("--wait", edge.wait_seconds, "seconds of each long poll")
      ->check(CLI::Range(1, 60));
  nginx_cmd->add_flag("--snippet", edge_snippet,
                      "print the server-block configuration that uses the maps, and exit");

  regionmove::ClientCommands client(app);

  app.footer(
      "Exit status: 0 done (a followed move completed), 1 error (the message says which), "
      "2 bad usage or configuration, 3 the followed move was aborted, 4 it failed, 130 stopped "
      "following with Ctrl-C (the move goes on).\n");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0 && regionmove::SuggestCommand(app, argc, argv)) return 2;
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (int rc = client.Run(); rc >= 0) return rc;
  if (*nginx_cmd) {
    if (edge_snippet) {
      std::cout << regionmove::NginxServerSnippet();
      return 0;
    }
    return regionmove::RunEdgeNginx(edge);
  }
  if (*serve_cmd) return regionmove::RunServe(config_path, listen, !no_workers);
  if (*worker_cmd) return regionmove::RunWorker(config_path);
  if (*mcp_cmd) {
    if (mcp_user.empty() && mcp_server.empty()) {
      std::cerr << "regionmove mcp: give --user NAME (in process) or --server URL --token T\n";
      return 2;
    }
    // An explicit --user selects the in-process mode even when REGIONMOVE_SERVER is set.
    return regionmove::RunMcpStdio(config_path, mcp_user, mcp_user.empty() ? mcp_server : "",
                                   mcp_token);
  }
  if (*config_cmd) return regionmove::PrintConfig(config_path);
  if (*demo_cmd) return regionmove::RunDemo(config_path, demo_rows, demo_blob_mib);
  if (*version_cmd) {
    std::cout << "regionmove 0.1.0\n";
    return 0;
  }
  return 0;
}
