#include "conformance/dataplane_conformance.h"

namespace regionmove::testing {

namespace {

Result<std::unique_ptr<regionmove::DatabaseEngine>> MakeEngine(const DatabaseEngine& e,
                                                               const Config* config, Rng* rng) {
  const DatabaseEngineFactory* make = FindDatabaseEngine(e.name);
  if (!make) return NotFound("no database engine " + e.name + " is registered");
  return (*make)(EngineEnv{config, rng, nullptr});
}

const RegionConfig* FindRegion(const Config& c, const std::string& slug) {
  for (const auto& r : c.regions) {
    if (r.slug == slug) return &r;
  }
  return nullptr;
}

}  // namespace

DbHandle OpenRegion(const DatabaseEngine& e, const std::string& dir, const std::string& region,
                    Rng* rng) {
  DbHandle h;
  h.config = std::make_unique<Config>(e.config(dir));
  auto engine = MakeEngine(e, h.config.get(), rng);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return h;
  h.engine = std::move(engine).value();
  const RegionConfig* rc = FindRegion(*h.config, region);
  EXPECT_NE(rc, nullptr) << region;
  if (!rc) return h;
  auto db = h.engine->OpenDatabase(*rc);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (db.ok()) h.db = std::move(db).value();
  return h;
}

Result<ReplicationPair> OpenPair(const DatabaseEngine& e, const std::string& dir, Rng* rng) {
  ReplicationPair p;
  p.config = std::make_unique<Config>(e.config(dir));
  ASSIGN_OR_RETURN(p.engine, MakeEngine(e, p.config.get(), rng));
  const RegionConfig* a = FindRegion(*p.config, "a-1");
  const RegionConfig* b = FindRegion(*p.config, "b-1");
  if (!a || !b) return NotFound("the test config lacks region a-1 or b-1");
  ASSIGN_OR_RETURN(p.a, p.engine->OpenDatabase(*a));
  ASSIGN_OR_RETURN(p.b, p.engine->OpenDatabase(*b));
  p.replicator = p.engine->replicator();
  return p;
}

void DropTestApp(const DatabaseEngine& e, const std::string& dir, const std::string& app) {
  Rng rng{1};
  auto p = OpenPair(e, dir, &rng);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  // Replication between the regions first: it may hold slots that keep a database in use.
  for (auto [from, to] : {std::pair{"a-1", "b-1"}, std::pair{"b-1", "a-1"}}) {
    Status s = p->replicator->Stop(app, from, to);
    ASSERT_TRUE(s.ok() || s.code() == StatusCode::kNotFound) << s.ToString();
  }
  ASSERT_OK(p->a->Drop(app));
  ASSERT_OK(p->b->Drop(app));
}

}  // namespace regionmove::testing
