#pragma once

#include <string>

#include "common/result.h"

namespace regionmove {

struct ReplicationLag {
  int64_t changes = 0;  // change records not yet applied to the replica
  int64_t bytes = 0;    // their size
  int64_t primary_position = 0;
  int64_t replica_position = 0;
};

// Keeps an app's database in a replica region current with its primary (the region serving it),
// for the retained source replica after a move. Every committed write of the primary is
// recorded in the same transaction; the replica stores its applied position in the same
// transaction as each applied change, so a crash on either side loses or doubles nothing.
// Thread-safe.
class Replicator {
 public:
  virtual ~Replicator() = default;
  // Starts recording the primary's writes for the replica, which must hold the same data now
  // (both fenced during a move). Idempotent.
  virtual Status Start(const std::string& app_id, const std::string& primary_region,
                       const std::string& replica_region) = 0;
  // Applies every pending change to the replica; returns the lag afterwards.
  virtual Result<ReplicationLag> Pump(const std::string& app_id, const std::string& primary_region,
                                      const std::string& replica_region) = 0;
  virtual Result<ReplicationLag> Lag(const std::string& app_id, const std::string& primary_region,
                                     const std::string& replica_region) = 0;
  // Stops recording and forgets pending changes. Idempotent.
  virtual Status Stop(const std::string& app_id, const std::string& primary_region,
                      const std::string& replica_region) = 0;
};

}  // namespace regionmove
