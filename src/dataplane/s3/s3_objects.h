#pragma once

#include <memory>
#include <string>

#include "common/ids.h"
#include "config/config.h"
#include "dataplane/object_store.h"
#include "dataplane/s3/s3_client.h"

namespace regionmove {

// Objects in an S3 bucket, under `prefix`. A new object gets a random suffix, so a name is
// written once. Content up to one part (8 MiB) goes in one PUT that carries its SHA-256 (the
// server checks it, and keeps it as x-amz-meta-sha256); larger content in a multipart upload
// whose parts each carry theirs, aborted when the writer is dropped. Memory per writer: one
// part, whatever the object's size. Objects under a prefix are deleted 1,000 per request.
class S3Objects final : public ObjectStore {
 public:
  // Creates the bucket when it does not exist.
  static Result<std::unique_ptr<S3Objects>> Open(const EngineConfig& config, Rng* rng);

  // A multipart upload carries `sha256` (when known before the content) as x-amz-meta-sha256;
  // a single PUT carries the SHA-256 of what it sends.
  Result<std::unique_ptr<ObjectWriter>> Create(const std::string& base,
                                               const std::string& sha256) override;
  Result<std::unique_ptr<BlobReader>> Read(const std::string& name, int64_t offset,
                                           int64_t size) override;
  Result<bool> Exists(const std::string& name) override;
  Status Remove(const std::string& name) override;
  Status RemoveDir(const std::string& dir) override;
  Result<std::vector<std::string>> List(const std::string& dir, const std::string& after,
                                        int limit) override;
  // Within one endpoint and account: CopyObject (objects up to 5 GiB), checked by size and by
  // the SHA-256 the object carries (x-amz-meta-sha256) when it carries one.
  std::string CopySource(const std::string& name) override;
  Result<std::optional<std::string>> CopyFrom(const std::string& source, const std::string& base,
                                              int64_t size, const std::string& sha256) override;

  static constexpr size_t kPartBytes = 8 << 20;

 private:
  S3Objects(std::unique_ptr<s3::Client> client, std::string prefix, std::string domain, Rng* rng)
      : client_(std::move(client)),
        prefix_(std::move(prefix)),
        domain_(std::move(domain)),
        rng_(rng) {}
  std::string NewName(const std::string& base);
  // Aborts the multipart uploads under `dir` + "/" that a crash left open (invisible, but
  // stored): part of RemoveDir. Nothing to do on a server that cannot list them.
  Status AbortUploads(const std::string& dir);
  std::unique_ptr<s3::Client> client_;
  std::string prefix_;
  std::string domain_;  // "<endpoint> <access key id>": stores that can copy each other's objects
  Rng* rng_;
};

// The s3 blob engine: S3Objects, indexed by `<config.dir>/_index.sqlite3`.
Result<std::unique_ptr<BlobStore>> OpenS3BlobStore(const EngineConfig& config, Rng* rng);

}  // namespace regionmove
