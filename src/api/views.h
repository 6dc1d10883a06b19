#pragma once

#include <nlohmann/json.hpp>

#include "dataplane/data_plane.h"
#include "domain/app.h"
#include "domain/migration.h"
#include "service/migration_service.h"

namespace regionmove {

// JSON shapes of SPEC §7, shared by REST, MCP and the CLI's --json output.
nlohmann::json AppJson(const App& app, int64_t size_bytes);
// `reversible` is computed by the caller (it needs the app's other migrations).
nlohmann::json MigrationJson(const Migration& m, bool reversible, int64_t eta_seconds);
// MigrationJson with `reversible` and the ETA worked out by the service.
nlohmann::json MigrationView(MigrationService* ms, const Migration& m);
nlohmann::json EventJson(const MigrationEvent& e);
nlohmann::json ReplicaJson(const ReplicaInfo& r);
nlohmann::json RegionJson(const RegionConfig& r);
nlohmann::json BlobJson(const BlobInfo& b);
// Error body: {"error": reason, "message": ..., plus reason_code / migration_id when known}.
nlohmann::json ErrorJson(const Status& s);
// HTTP status for an error Status.
int HttpStatusFor(const Status& s);

}  // namespace regionmove
