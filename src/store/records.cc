#include "store/records.h"

namespace regionmove::store {

std::string IntegrationSchema(const std::string& int_type, const std::string& seq_type) {
  std::string sql = R"sql(
CREATE TABLE routing_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version {I} NOT NULL
);
INSERT INTO routing_state(id, version) VALUES (1, 1);
CREATE TABLE outbox (
  seq {SEQ},
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  app_id TEXT NOT NULL,
  migration_id TEXT NOT NULL,
  created_at_ms {I} NOT NULL,
  data TEXT NOT NULL
);
CREATE TABLE webhook_cursors (
  webhook TEXT PRIMARY KEY,
  seq {I} NOT NULL
);
CREATE TABLE webhook_deliveries (
  webhook TEXT NOT NULL,
  seq {I} NOT NULL,
  app_id TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at_ms {I} NOT NULL,
  last_error TEXT NOT NULL,
  last_code INTEGER NOT NULL,
  updated_at_ms {I} NOT NULL,
  PRIMARY KEY (webhook, seq)
);
CREATE INDEX deliveries_pending ON webhook_deliveries(webhook, status, app_id, seq);
CREATE INDEX deliveries_by_time ON webhook_deliveries(updated_at_ms);
)sql";
  for (auto [from, to] :
       {std::pair<std::string, const std::string&>{"{I}", int_type}, {"{SEQ}", seq_type}}) {
    for (size_t at = sql.find(from); at != std::string::npos; at = sql.find(from, at)) {
      sql.replace(at, from.size(), to);
      at += to.size();
    }
  }
  return sql;
}

}  // namespace regionmove::store
