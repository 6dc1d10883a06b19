// regionmove command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "cli/client.h"
#include "cli/demo.h"
#include "cli/mcp_stdio.h"
#include "cli/serve.h"
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

  regionmove::ClientCommands client(app);

  CLI11_PARSE(app, argc, argv);
  if (int rc = client.Run(); rc >= 0) return rc;
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
