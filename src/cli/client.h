#pragma once

#include <CLI/CLI.hpp>

namespace regionmove {

// Adds the client subcommands (regions, apps, move, migrations, replicas) that talk to a
// running server, and returns the code of the one that ran (or -1 when none of them ran).
class ClientCommands {
 public:
  explicit ClientCommands(CLI::App& app);
  int Run();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace regionmove
