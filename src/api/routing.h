#pragma once

#include <optional>
#include <string>

namespace httplib {
struct Request;
}

namespace regionmove {

class System;

// The app whose data a request writes (POST/PUT/PATCH/DELETE under /v1/apps/{id}/<data> or a
// host-routed /<data> path), or nullopt for any other request. Used by the guard.
std::optional<std::string> DataWriteTarget(System* sys, const httplib::Request& req);
// A PUT of a blob's content (/v1/apps/{id}/blobs/{key} or a host-routed /blobs/{key}): its
// body streams into the blob store, up to server.max_blob_bytes.
bool IsBlobUpload(const httplib::Request& req);
// The app a Host header names: a custom domain, or <subdomain>.<apps_domain>.
std::optional<std::string> AppForHost(System* sys, const std::string& host_header);
// "/v1/apps/app_x/tables/t/r1" -> "/v1/apps/{app_id}/tables/{table}/{id}" (for metrics).
std::string NormalizeRoute(const std::string& path);

}  // namespace regionmove
