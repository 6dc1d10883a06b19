#include "cli/client.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/progress.h"
#include "common/clock.h"
#include "domain/migration.h"

namespace regionmove {

using nlohmann::json;

namespace {

// The fields of an AppMigration that the progress display needs.
Migration FromJson(const json& j) {
  Migration m;
  m.id = j.value("migration_id", "");
  m.reverse_path = j["path"].is_string() ? j["path"].get<std::string>() : "";
  m.strategy = j.value("strategy", "offline");  // its plan: how many steps there are
  m.source_region = j.value("source_region", "");
  m.dest_region = j.value("dest_region", "");
  m.current_step = ParseStep(j.value("current_step", "requested")).value_or(Step::kRequested);
  std::string status = j.value("status", "running");
  m.admitted = status != "queued";
  m.abort_requested = status == "aborting";
  m.last_error = j["last_error"].is_string() ? j["last_error"].get<std::string>() : "";
  const json& p = j["progress"];
  if (p.is_object()) {
    m.progress.bytes_done = p.value("bytes_done", int64_t{0});
    m.progress.bytes_total = p.value("bytes_total", int64_t{0});
  }
  if (j["step_started_at"].is_string()) m.step_started_at_ms = ParseTimeMs(j["step_started_at"]);
  return m;
}

// SIGINT (Ctrl-C) while following: noted, so that the display can end its line and say that
// the migration goes on. The previous handler comes back when the guard goes.
std::atomic<bool> g_interrupted{false};
extern "C" void NoteInterrupt(int) { g_interrupted = true; }

class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = false;
    struct sigaction sa {};
    sa.sa_handler = NoteInterrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~InterruptGuard() { sigaction(SIGINT, &old_, nullptr); }
  bool fired() const { return g_interrupted; }

 private:
  struct sigaction old_ {};
};

}  // namespace

struct ClientCommands::Impl {
  std::string server, token;
  bool as_json = false;
  std::function<int()> run;

  struct Response {
    int status = 0;
    json body;
  };

  std::unique_ptr<httplib::Client> Connect() {
    std::string url = server.empty() ? "http://127.0.0.1:8080" : server;
    while (url.size() > 1 && url.back() == '/') url.pop_back();  // http://host:port/ works too
    auto c = std::make_unique<httplib::Client>(url);
    c->set_connection_timeout(5);
    c->set_read_timeout(60);
    if (!token.empty()) c->set_bearer_token_auth(token);
    return c;
  }

  // One request; prints the error and returns nullopt on failure.
  std::optional<Response> Call(const std::string& method, const std::string& path,
                               const json* body = nullptr) {
    auto c = Connect();
    httplib::Result r = method == "GET" ? c->Get(path)
                        : method == "POST"
                            ? c->Post(path, body ? body->dump() : "{}", "application/json")
                            : c->Delete(path);
    if (!r) {
      std::cerr << "error: cannot reach " << (server.empty() ? "http://127.0.0.1:8080" : server)
                << " (" << httplib::to_string(r.error()) << "); is `regionmove serve` running?\n";
      return std::nullopt;
    }
    Response out{r->status, json::parse(r->body, nullptr, false)};
    if (r->status >= 400) {
      if (as_json) {
        std::cout << r->body << "\n";
      } else if (out.body.is_object()) {
        std::cerr << "error: " << out.body.value("error", "error") << ": "
                  << out.body.value("message", "") << "\n";
      } else {
        std::cerr << "error: HTTP " << r->status << "\n";
      }
      return std::nullopt;
    }
    return out;
  }

  // A move's dry-run plan for people: sizes, each strategy's estimated pause and duration,
  // the recommendation, and each check with a mark and its sentence.
  static void PrintPlan(const json& p) {
    auto seconds = [](const json& v) {
      const double x = v.is_number() ? v.get<double>() : 0.0;
      if (x < 0.05) return std::string("<0.1 s");
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f s", x);
      return std::string(buf);
    };
    const std::string chosen = p.value("strategy", "");
    std::cout << "Plan: move " << p.value("app_id", "") << " from " << p.value("source_region", "")
              << " to " << p.value("dest_region", "") << " (" << chosen << ", "
              << p.value("steps", 0) << " steps)\n";
    const json sizes = p.value("sizes", json::object());
    std::cout << "  data:        database " << HumanBytes(sizes.value("database_bytes", int64_t{0}))
              << ", blobs " << HumanBytes(sizes.value("blob_bytes", int64_t{0})) << "\n";
    const json strategies = p.value("strategies", json::object());
    for (const char* s : {"offline", "online"}) {
      if (!strategies.contains(s)) continue;
      const json& e = strategies[s];
      std::printf("  %s%-9s writes paused ~%s, done in ~%s; rates %s\n", chosen == s ? "* " : "  ",
                  (std::string(s) + ":").c_str(),
                  seconds(e["estimated_write_block_seconds"]).c_str(),
                  seconds(e["estimated_duration_seconds"]).c_str(), e.value("rates", "").c_str());
    }
    std::cout << "  recommended: " << p.value("recommended_strategy", "") << "\n";
    for (const auto& c : p.value("checks", json::array())) {
      std::cout << "  " << (c.value("ok", false) ? "\u2713 " : "\u2717 ") << c.value("message", "")
                << "\n";
    }
    std::cout << (p.value("eligible", false) ? "Eligible: run it without --dry-run.\n"
                                             : "Not eligible: see the checks marked \u2717.\n");
  }

  int Print(const std::optional<Response>& r, const std::function<void(const json&)>& human) {
    if (!r) return 1;
    if (as_json) {
      std::cout << r->body.dump(2) << "\n";
    } else {
      human(r->body);
    }
    return 0;
  }

  // Follows a migration until it ends: the live display, or with --json one AppMigration per
  // line each time its step, status or progress changes (the last line is the final state).
  // Returns the exit status the README's CLI section lists: 0 completed, 3 aborted, 4 failed,
  // 130 interrupted (1 when the server cannot be asked).
  int Follow(const std::string& app, const std::string& id) {
    ProgressPrinter printer(stdout);
    InterruptGuard interrupt;
    std::string last_json_key;
    while (true) {
      auto r = Call("GET", "/v1/apps/" + app + "/migrations/" + id);
      if (!r) return 1;
      const json& body = r->body;
      const std::string status = body.value("status", "");
      const bool done = status == "completed" || status == "aborted" || status == "failed";
      Migration m = FromJson(body);
      if (as_json) {
        const std::string key =
            body.value("current_step", "") + "/" + status + "/" +
            body.value("progress", json::object()).value("bytes_done", json(0)).dump();
        if (key != last_json_key) std::cout << body.dump() << std::endl;
        last_json_key = key;
      } else if (done) {
        printer.Finish(m, SystemClock::Default()->NowMs());
        PrintOutcome(body);
      } else {
        printer.Update(m, SystemClock::Default()->NowMs());
      }
      if (done) return status == "completed" ? 0 : status == "aborted" ? 3 : 4;
      for (int i = 0; i < 6 && !interrupt.fired(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (interrupt.fired()) {
        printer.Interrupt();
        std::cerr << "Stopped following; migration " << id
                  << " continues on the server. Follow it again with:\n  regionmove migrations "
                     "status "
                  << app << " " << id << " --follow\n";
        return 130;
      }
    }
  }

  // The end of --follow for people: what happened, how long writes were paused, where the
  // app is, and what to do next.
  static void PrintOutcome(const json& m) {
    const std::string id = m.value("migration_id", ""), app = m.value("app_id", "");
    const std::string from = m.value("source_region", ""), to = m.value("dest_region", "");
    const std::string status = m.value("status", "");
    const bool reverse = m.value("kind", "") == "reverse";
    if (status != "completed") {
      std::cout << "Migration " << id << " " << status << "; the app stays in " << from
                << (m.value("needs_repair", false) ? " and needs an admin's repair" : "") << ".\n";
      if (m["last_error"].is_string())
        std::cout << "  last error: " << m["last_error"].get<std::string>() << "\n";
      std::cout << "  history: regionmove migrations events " << app << " " << id << "\n";
      return;
    }
    double total = 0;
    if (m["initiated_at"].is_string() && m["completed_at"].is_string()) {
      total = static_cast<double>(ParseTimeMs(m["completed_at"]) - ParseTimeMs(m["initiated_at"])) /
              1000.0;
    }
    std::cout << (reverse ? "Reversed: " : "Moved: ") << app << " is served from " << to << " ("
              << HumanSeconds(total) << " in all";
    if (m["writes_paused_seconds"].is_number()) {
      std::cout << ", writes paused " << HumanSeconds(m["writes_paused_seconds"].get<double>());
    }
    std::cout << ").\n";
    const std::string replica = m.value("source_replica_state", "");
    if (replica == "replicating") {
      std::cout << "  " << from << " keeps a replica that follows " << to
                << ", so this can be reversed in seconds.\n"
                << "Next:\n"
                << "  to move it back through the replica:\n"
                << "    regionmove migrations reverse " << app << " " << id << "\n"
                << "  once the app is stable in " << to << ", to stop paying for the replica:\n"
                << "    regionmove replicas teardown " << id << "\n";
    } else {
      std::cout << "  replica in " << from << ": " << replica << "\n";
    }
  }

  static void PrintMigration(const json& m) {
    std::cout << "migration " << m.value("migration_id", "") << " (" << m.value("kind", "")
              << (m["path"].is_string() ? ", " + m["path"].get<std::string>() + " path" : "")
              << ")\n"
              << "  " << m.value("source_region", "") << " -> " << m.value("dest_region", "")
              << "  step " << m["progress"].value("step_index", 0) << "/"
              << m["progress"].value("step_count", 11) << " " << m.value("current_step", "")
              << "  status " << m.value("status", "") << "\n"
              << "  " << m.value("step_label", "") << "\n"
              << "  source replica: " << m.value("source_replica_state", "")
              << "  abortable: " << (m.value("abortable", false) ? "yes" : "no")
              << "  reversible: " << (m.value("reversible", false) ? "yes" : "no") << "\n";
    if (m["last_error"].is_string()) std::cout << "  last error: " << m["last_error"] << "\n";
  }
};

ClientCommands::ClientCommands(CLI::App& app) : impl_(std::make_shared<Impl>()) {
  Impl* d = impl_.get();
  if (const char* s = std::getenv("REGIONMOVE_SERVER")) d->server = s;
  if (const char* t = std::getenv("REGIONMOVE_TOKEN")) d->token = t;
  auto common = [d](CLI::App* cmd) {
    cmd->add_option("--server", d->server, "server URL (env REGIONMOVE_SERVER)");
    cmd->add_option("--token", d->token, "bearer token (env REGIONMOVE_TOKEN)");
    cmd->add_flag("--json", d->as_json, "print the JSON answer");
  };

  auto* regions = app.add_subcommand("regions", "list the regions");
  common(regions);
  regions->callback([d] {
    d->run = [d] {
      return d->Print(d->Call("GET", "/v1/regions"), [](const json& b) {
        for (const auto& r : b["regions"]) {
          std::printf("%-16s %-28s %-10s %s\n", r.value("slug", "").c_str(),
                      r.value("name", "").c_str(), r.value("status", "").c_str(),
                      r.value("accepting_moves", false) ? "accepting moves" : "not accepting");
        }
      });
    };
  });

  // ---- apps
  auto* apps = app.add_subcommand("apps", "create, list and show apps");
  apps->require_subcommand(1);
  auto app_line = [](const json& a) {
    std::printf("%-18s %-20s %-16s %-10s %s\n", a.value("app_id", "").c_str(),
                a.value("name", "").c_str(), a.value("region", "").c_str(),
                a.value("status", "").c_str(), HumanBytes(a.value("size_bytes", 0)).c_str());
  };
  auto* create = apps->add_subcommand("create", "create an app");
  common(create);
  auto name = std::make_shared<std::string>(), region = std::make_shared<std::string>(),
       sub = std::make_shared<std::string>();
  create->add_option("name", *name, "app name")->required();
  create->add_option("--region", *region, "region slug")->required();
  create->add_option("--subdomain", *sub, "subdomain (default: from the app id)");
  create->callback([d, name, region, sub, app_line] {
    d->run = [=] {
      json body = {{"name", *name}, {"region", *region}};
      if (!sub->empty()) body["subdomain"] = *sub;
      return d->Print(d->Call("POST", "/v1/apps", &body), app_line);
    };
  });
  auto* list = apps->add_subcommand("list", "list your apps");
  common(list);
  list->callback([d, app_line] {
    d->run = [=] {
      return d->Print(d->Call("GET", "/v1/apps"), [&](const json& b) {
        if (b["apps"].empty()) {
          std::cout << "no apps yet (regionmove apps create NAME --region REGION)\n";
          return;
        }
        std::printf("%-18s %-20s %-16s %-10s %s\n", "APP", "NAME", "REGION", "STATUS", "SIZE");
        for (const auto& a : b["apps"]) app_line(a);
      });
    };
  });
  auto* show = apps->add_subcommand("show", "show one app");
  common(show);
  auto app_id = std::make_shared<std::string>();
  show->add_option("app", *app_id, "app id")->required();
  show->callback([d, app_id] {
    d->run = [=] {
      return d->Print(d->Call("GET", "/v1/apps/" + *app_id), [](const json& a) {
        std::cout << a.value("app_id", "") << "  " << a.value("name", "") << "\n";
        auto field = [](const char* label, const std::string& value) {
          std::printf("  %-16s %s\n", label, value.c_str());
        };
        field("region", a.value("region", ""));
        field("status", a.value("status", ""));
        field("size", HumanBytes(a.value("size_bytes", 0)));
        field("subdomain", a.value("subdomain", ""));
        field("owner", a.value("owner", ""));
        field("created", a.value("created_at", ""));
        field("routing version", std::to_string(a.value("routing_version", 0)));
      });
    };
  });

  // ---- move
  auto* move = app.add_subcommand("move", "move an app to another region");
  common(move);
  auto dest = std::make_shared<std::string>(), strategy = std::make_shared<std::string>();
  auto follow = std::make_shared<bool>(false), dry = std::make_shared<bool>(false);
  move->add_option("app", *app_id, "app id")->required();
  move->add_option("region", *dest, "destination region")->required();
  move->add_option("--strategy", *strategy,
                   "offline (default): writes pause for the whole copy; online: the copy runs "
                   "while writes continue, writes pause only for the final catch-up");
  move->add_flag("--follow", *follow, "show live progress until the move ends");
  move->add_flag("--dry-run", *dry, "show the plan without moving");
  move->callback([d, app_id, dest, strategy, follow, dry] {
    d->run = [=] {
      json body = {{"dest_region", *dest}, {"dry_run", *dry}};
      if (!strategy->empty()) body["strategy"] = *strategy;
      auto r = d->Call("POST", "/v1/apps/" + *app_id + "/move", &body);
      if (!r) return 1;
      const std::string id = r->body.value("migration_id", "");
      if (*dry || !*follow) {
        if (d->as_json) {
          std::cout << r->body.dump(2) << "\n";
        } else if (*dry) {
          d->PrintPlan(r->body);
        } else {
          std::cout << "migration " << id << " queued; follow it with: regionmove migrations "
                    << "status " << *app_id << " " << id << " --follow\n";
        }
        return 0;
      }
      if (!d->as_json) std::cout << "migration " << id << " queued\n";
      return d->Follow(*app_id, id);
    };
  });

  // ---- migrations
  auto* migs = app.add_subcommand("migrations", "inspect, abort and reverse migrations");
  migs->require_subcommand(1);
  auto mig_id = std::make_shared<std::string>();
  auto* status = migs->add_subcommand("status", "show a migration");
  common(status);
  status->add_option("app", *app_id, "app id")->required();
  status->add_option("migration", *mig_id, "migration id")->required();
  status->add_flag("--follow", *follow, "show live progress until it ends");
  status->callback([d, app_id, mig_id, follow] {
    d->run = [=] {
      if (*follow) return d->Follow(*app_id, *mig_id);
      return d->Print(d->Call("GET", "/v1/apps/" + *app_id + "/migrations/" + *mig_id),
                      Impl::PrintMigration);
    };
  });
  auto* active = migs->add_subcommand("active", "show the app's active migration");
  common(active);
  active->add_option("app", *app_id, "app id")->required();
  active->callback([d, app_id] {
    d->run = [=] {
      return d->Print(d->Call("GET", "/v1/apps/" + *app_id + "/migrations/active"),
                      [](const json& b) {
                        if (b["migration"].is_null()) {
                          std::cout << "no active migration\n";
                        } else {
                          Impl::PrintMigration(b["migration"]);
                        }
                      });
    };
  });
  auto* mlist = migs->add_subcommand("list", "list the app's migrations, newest first");
  common(mlist);
  mlist->add_option("app", *app_id, "app id")->required();
  mlist->callback([d, app_id] {
    d->run = [=] {
      return d->Print(d->Call("GET", "/v1/apps/" + *app_id + "/migrations"), [&](const json& b) {
        if (b["migrations"].empty()) {
          std::cout << "no migrations of " << *app_id << "\n";
          return;
        }
        std::printf("%-36s  %-7s %-14s    %-14s %-10s %s\n", "MIGRATION", "KIND", "FROM", "TO",
                    "STATUS", "STEP");
        for (const auto& m : b["migrations"]) {
          // The step only while it says more than the status (a finished move's is its status).
          const std::string status = m.value("status", ""), step = m.value("current_step", "");
          char line[256];
          std::snprintf(line, sizeof line, "%-36s  %-7s %-14s -> %-14s %-10s %s",
                        m.value("migration_id", "").c_str(), m.value("kind", "").c_str(),
                        m.value("source_region", "").c_str(), m.value("dest_region", "").c_str(),
                        status.c_str(), step == status ? "" : step.c_str());
          std::string text = line;
          while (!text.empty() && text.back() == ' ') text.pop_back();
          std::cout << text << "\n";
        }
      });
    };
  });
  auto* abort = migs->add_subcommand("abort", "abort a migration before its cutover");
  common(abort);
  abort->add_option("app", *app_id, "app id")->required();
  abort->add_option("migration", *mig_id, "migration id")->required();
  abort->callback([d, app_id, mig_id] {
    d->run = [=] {
      return d->Print(d->Call("POST", "/v1/apps/" + *app_id + "/migrations/" + *mig_id + "/abort"),
                      [](const json& b) {
                        std::cout << "migration " << b.value("migration_id", "") << " is "
                                  << b.value("status", "") << "\n";
                      });
    };
  });
  auto* reverse = migs->add_subcommand("reverse", "move the app back (fast through the replica)");
  common(reverse);
  reverse->add_option("app", *app_id, "app id")->required();
  reverse->add_option("migration", *mig_id, "the completed migration to reverse")->required();
  reverse->add_flag("--follow", *follow, "show live progress until it ends");
  reverse->callback([d, app_id, mig_id, follow] {
    d->run = [=] {
      auto r = d->Call("POST", "/v1/apps/" + *app_id + "/migrations/" + *mig_id + "/reverse");
      if (!r) return 1;
      if (d->as_json && !*follow) {
        std::cout << r->body.dump(2) << "\n";
        return 0;
      }
      if (!d->as_json) {
        std::cout << "reverse " << r->body.value("migration_id", "") << " queued ("
                  << r->body.value("path", "") << " path)\n";
      }
      return *follow ? d->Follow(*app_id, r->body.value("migration_id", "")) : 0;
    };
  });
  auto* events = migs->add_subcommand("events", "show a migration's history");
  common(events);
  events->add_option("app", *app_id, "app id")->required();
  events->add_option("migration", *mig_id, "migration id")->required();
  events->callback([d, app_id, mig_id] {
    d->run = [=] {
      return d->Print(
          d->Call("GET", "/v1/apps/" + *app_id + "/migrations/" + *mig_id + "/events"),
          [](const json& b) {
            for (const auto& e : b["events"]) {
              std::printf("%s  %-16s %-30s -> %-30s %6lldms %s%s\n",
                          e["ended_at"].is_string() ? e["ended_at"].get<std::string>().c_str() : "",
                          e.value("type", "").c_str(), e.value("from", "").c_str(),
                          e.value("to", "").c_str(),
                          static_cast<long long>(e.value("duration_ms", int64_t{0})),
                          e.value("message", "").c_str(),
                          e["error"].is_string()
                              ? (" error: " + e["error"].get<std::string>()).c_str()
                              : "");
            }
          });
    };
  });

  // ---- replicas
  auto* replicas = app.add_subcommand("replicas", "list and tear down source replicas");
  replicas->require_subcommand(1);
  auto* rlist = replicas->add_subcommand("list", "list retained source replicas");
  common(rlist);
  rlist->callback([d] {
    d->run = [d] {
      return d->Print(d->Call("GET", "/v1/source-replicas"), [](const json& b) {
        const char* row = "%-36s  %-18s %-14s %-14s %-13s %-10s %s\n";
        if (!b["source_replicas"].empty()) {
          std::printf(row, "MIGRATION", "APP", "REPLICA IN", "APP IN", "STATE", "SIZE",
                      "LAG      COST/MONTH");
        }
        for (const auto& r : b["source_replicas"]) {
          const std::string lag = HumanBytes(r.value("lag_bytes", 0));
          char tail[64];
          std::snprintf(tail, sizeof tail, "%-8s %s", lag.c_str(),
                        HumanUsd(r.value("estimated_monthly_cost_usd", 0.0)).c_str());
          std::printf(row, r.value("migration_id", "").c_str(), r.value("app_id", "").c_str(),
                      r.value("source_region", "").c_str(), r.value("dest_region", "").c_str(),
                      r.value("state", "").c_str(), HumanBytes(r.value("size_bytes", 0)).c_str(),
                      tail);
        }
        if (b["source_replicas"].empty()) std::cout << "no retained source replicas\n";
      });
    };
  });
  auto* teardown = replicas->add_subcommand("teardown", "tear down a migration's source replica");
  common(teardown);
  teardown->add_option("migration", *mig_id, "migration id")->required();
  teardown->callback([d, mig_id] {
    d->run = [=] {
      return d->Print(d->Call("DELETE", "/v1/source-replicas/" + *mig_id), [](const json& b) {
        std::cout << "replica of " << b.value("migration_id", "") << " " << b.value("status", "")
                  << "\n";
      });
    };
  });
}

int ClientCommands::Run() { return impl_->run ? impl_->run() : -1; }

}  // namespace regionmove
