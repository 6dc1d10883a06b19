#include "dataplane/s3/s3_objects.h"

#include <openssl/evp.h>

#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>

#include "common/hash.h"
#include "dataplane/indexed_blob_store.h"

namespace regionmove {

namespace {

Status Failed(const std::string& what, const s3::Response& res) {
  std::vector<std::string> code = s3::XmlValues(res.body, "Code");
  std::vector<std::string> message = s3::XmlValues(res.body, "Message");
  return Unavailable(what + ": HTTP " + std::to_string(res.status) +
                     (code.empty() ? "" : " " + code[0]) +
                     (message.empty() ? "" : ": " + message[0]));
}

std::string Md5Base64(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  return Base64Encode(std::string_view(reinterpret_cast<char*>(md), len));
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Uploads one object: a single PUT when it fits in one part, else a multipart upload whose
// parts go up while the next ones fill (at most kPartsInFlight at once, so memory per writer is
// bounded by (kPartsInFlight + 1) parts whatever the object's size).
class S3Writer final : public ObjectWriter {
 public:
  static constexpr size_t kPartsInFlight = 2;

  S3Writer(const s3::Client* client, std::string name, std::string key, std::string sha256)
      : client_(client), name_(std::move(name)), key_(std::move(key)), sha256_(std::move(sha256)) {
    buf_.reserve(S3Objects::kPartBytes);
  }
  ~S3Writer() override {
    for (auto& part : inflight_) part.wait();
    if (upload_id_.empty() || committed_) return;
    s3::Request abort{"DELETE", key_, {{"uploadId", upload_id_}}, {}, {}};
    (void)client_->Send(abort);  // what is left is swept with the namespace
  }

  Status Write(const char* data, size_t n) override {
    while (n > 0) {
      size_t take = std::min(n, S3Objects::kPartBytes - buf_.size());
      buf_.append(data, take);
      data += take;
      n -= take;
      if (buf_.size() == S3Objects::kPartBytes) RETURN_IF_ERROR(UploadPart());
    }
    return Status::Ok();
  }

  Result<std::string> Commit(const std::string& sha256) override {
    if (upload_id_.empty()) {
      s3::Request put{"PUT", key_, {}, {{"x-amz-meta-sha256", sha256}}, buf_};
      ASSIGN_OR_RETURN(s3::Response res, client_->Send(put));
      if (res.status != 200) return Failed("s3 PUT " + key_, res);
    } else {
      if (!buf_.empty()) RETURN_IF_ERROR(UploadPart());
      while (!inflight_.empty()) RETURN_IF_ERROR(CollectOldest());
      std::string xml = "<CompleteMultipartUpload>";
      for (size_t i = 0; i < etags_.size(); ++i) {
        xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
               XmlEscape(etags_[i]) + "</ETag></Part>";
      }
      xml += "</CompleteMultipartUpload>";
      s3::Request done{"POST", key_, {{"uploadId", upload_id_}}, {}, xml};
      ASSIGN_OR_RETURN(s3::Response res, client_->Send(done));
      // S3 may answer 200 with an error in the body.
      if (res.status != 200 || res.body.find("<Error>") != std::string::npos) {
        return Failed("s3 complete upload " + key_, res);
      }
    }
    committed_ = true;
    return name_;
  }

 private:
  Status UploadPart() {
    if (upload_id_.empty()) {
      s3::Request start{"POST", key_, {{"uploads", ""}}, {}, {}};
      if (!sha256_.empty()) start.headers["x-amz-meta-sha256"] = sha256_;
      ASSIGN_OR_RETURN(s3::Response res, client_->Send(start));
      std::vector<std::string> id = s3::XmlValues(res.body, "UploadId");
      if (res.status != 200 || id.empty()) return Failed("s3 start upload " + key_, res);
      upload_id_ = id[0];
    }
    if (inflight_.size() >= kPartsInFlight) RETURN_IF_ERROR(CollectOldest());
    std::string number = std::to_string(++parts_);
    inflight_.push_back(std::async(
        std::launch::async,
        [client = client_, key = key_, id = upload_id_, number,
         body = std::move(buf_)]() -> Result<std::string> {
          s3::Request part{"PUT", key, {{"partNumber", number}, {"uploadId", id}}, {}, body};
          ASSIGN_OR_RETURN(s3::Response res, client->Send(part));
          if (res.status != 200 || !res.headers.count("etag")) {
            return Failed("s3 upload part " + number + " of " + key, res);
          }
          return res.headers["etag"];
        }));
    buf_ = std::string();
    buf_.reserve(S3Objects::kPartBytes);
    return Status::Ok();
  }

  Status CollectOldest() {
    Result<std::string> etag = inflight_.front().get();
    inflight_.pop_front();
    RETURN_IF_ERROR(etag.status());
    etags_.push_back(std::move(*etag));
    return Status::Ok();
  }

  const s3::Client* client_;
  std::string name_, key_;
  std::string sha256_;  // known before the content (a copy), or empty
  std::string buf_;
  std::string upload_id_;
  int parts_ = 0;
  std::deque<std::future<Result<std::string>>> inflight_;  // in part order
  std::vector<std::string> etags_;
  bool committed_ = false;
};

}  // namespace

Result<std::unique_ptr<S3Objects>> S3Objects::Open(const EngineConfig& config, Rng* rng) {
  ASSIGN_OR_RETURN(auto client, s3::Client::Make(config));
  // A listing of nothing rather than a HEAD: a refusal comes with the server's reason.
  ASSIGN_OR_RETURN(s3::Response head,
                   client->Send({"GET", "", {{"list-type", "2"}, {"max-keys", "0"}}, {}, {}}));
  if (head.status == 404) {
    ASSIGN_OR_RETURN(s3::Response made, client->Send({"PUT", "", {}, {}, {}}));
    if (made.status != 200) return Failed("s3 create bucket " + config.bucket, made);
  } else if (head.status != 200) {
    return Failed("s3 bucket " + config.bucket + " at " + config.endpoint, head);
  }
  std::string domain = config.endpoint + " " + client->access_key_id();
  return std::unique_ptr<S3Objects>(
      new S3Objects(std::move(client), config.prefix, std::move(domain), rng));
}

std::string S3Objects::NewName(const std::string& base) {
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, "-%016llx", static_cast<unsigned long long>(rng_->Next()));
  return base + suffix;
}

Result<std::unique_ptr<ObjectWriter>> S3Objects::Create(const std::string& base,
                                                        const std::string& sha256) {
  std::string name = NewName(base);
  return std::unique_ptr<ObjectWriter>(new S3Writer(client_.get(), name, prefix_ + name, sha256));
}

std::string S3Objects::CopySource(const std::string& name) {
  return domain_ + "\n/" + client_->bucket() + "/" + prefix_ + name;
}

Result<std::optional<std::string>> S3Objects::CopyFrom(const std::string& source,
                                                       const std::string& base, int64_t size,
                                                       const std::string& sha256) {
  constexpr int64_t kMaxCopyObject = 5LL << 30;
  if (source.rfind(domain_ + "\n", 0) != 0 || size > kMaxCopyObject) {
    return std::optional<std::string>();
  }
  std::string from = source.substr(domain_.size() + 1);
  std::string name = NewName(base);
  s3::Request copy{
      "PUT", prefix_ + name, {}, {{"x-amz-copy-source", s3::Client::UriEncode(from, true)}}, {}};
  ASSIGN_OR_RETURN(s3::Response res, client_->Send(copy));
  // S3 may answer 200 with an error in the body.
  if (res.status != 200 || res.body.find("<Error>") != std::string::npos) {
    return Failed("s3 copy " + from + " to " + prefix_ + name, res);
  }
  ASSIGN_OR_RETURN(s3::Response head, client_->Send({"HEAD", prefix_ + name, {}, {}, {}}));
  std::string stored_sha =
      head.headers.count("x-amz-meta-sha256") ? head.headers["x-amz-meta-sha256"] : sha256;
  if (head.status != 200 || head.headers["content-length"] != std::to_string(size) ||
      stored_sha != sha256) {
    (void)Remove(name);
    return Corruption("s3 copy of " + from + " does not verify (size or SHA-256)");
  }
  return std::optional<std::string>(name);
}

Result<std::unique_ptr<BlobReader>> S3Objects::Read(const std::string& name, int64_t offset,
                                                    int64_t size) {
  return client_->Get(prefix_ + name, offset, size);
}

Result<bool> S3Objects::Exists(const std::string& name) {
  ASSIGN_OR_RETURN(s3::Response res, client_->Send({"HEAD", prefix_ + name, {}, {}, {}}));
  if (res.status == 200) return true;
  if (res.status == 404) return false;
  return Failed("s3 HEAD " + prefix_ + name, res);
}

Status S3Objects::Remove(const std::string& name) {
  ASSIGN_OR_RETURN(s3::Response res, client_->Send({"DELETE", prefix_ + name, {}, {}, {}}));
  if (res.status == 204 || res.status == 200 || res.status == 404) return Status::Ok();
  return Failed("s3 DELETE " + prefix_ + name, res);
}

Status S3Objects::RemoveDir(const std::string& dir) {
  // Resumable by nature: each round lists what is left and deletes it.
  while (true) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, List(dir, "", 1000));
    if (names.empty()) return AbortUploads(dir);
    std::string xml = "<Delete><Quiet>true</Quiet>";
    for (const auto& n : names) {
      xml += "<Object><Key>" + XmlEscape(prefix_ + n) + "</Key></Object>";
    }
    xml += "</Delete>";
    s3::Request del{"POST", "", {{"delete", ""}}, {{"content-md5", Md5Base64(xml)}}, xml};
    ASSIGN_OR_RETURN(s3::Response gone, client_->Send(del));
    if (gone.status != 200 || !s3::XmlValues(gone.body, "Error").empty()) {
      return Failed("s3 delete objects under " + prefix_ + dir, gone);
    }
  }
}

Result<std::vector<std::string>> S3Objects::List(const std::string& dir, const std::string& after,
                                                 int limit) {
  s3::Request list{
      "GET",
      "",
      {{"list-type", "2"}, {"prefix", prefix_ + dir + "/"}, {"max-keys", std::to_string(limit)}},
      {},
      {}};
  if (!after.empty()) list.query["start-after"] = prefix_ + after;
  ASSIGN_OR_RETURN(s3::Response res, client_->Send(list));
  if (res.status != 200) return Failed("s3 list " + prefix_ + dir, res);
  std::vector<std::string> names;
  for (auto& key : s3::XmlValues(res.body, "Key")) names.push_back(key.substr(prefix_.size()));
  return names;
}

Status S3Objects::AbortUploads(const std::string& dir) {
  for (int round = 0; round < 1000; ++round) {
    s3::Request list{"GET", "", {{"uploads", ""}, {"prefix", prefix_ + dir + "/"}}, {}, {}};
    ASSIGN_OR_RETURN(s3::Response res, client_->Send(list));
    if (res.status != 200) return Status::Ok();  // a server that cannot list them (s3rver)
    std::vector<std::string> keys = s3::XmlValues(res.body, "Key");
    std::vector<std::string> ids = s3::XmlValues(res.body, "UploadId");
    if (keys.empty() || keys.size() != ids.size()) return Status::Ok();
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSIGN_OR_RETURN(s3::Response gone,
                       client_->Send({"DELETE", keys[i], {{"uploadId", ids[i]}}, {}, {}}));
      if (gone.status != 204 && gone.status != 200 && gone.status != 404) {
        return Failed("s3 abort upload of " + keys[i], gone);
      }
    }
  }
  return Unavailable("s3: uploads under " + prefix_ + dir + " keep appearing");
}

Result<std::unique_ptr<BlobStore>> OpenS3BlobStore(const EngineConfig& config, Rng* rng) {
  std::error_code ec;
  std::filesystem::create_directories(config.dir, ec);
  if (ec) return Permanent("cannot create " + config.dir + ": " + ec.message());
  ASSIGN_OR_RETURN(auto objects, S3Objects::Open(config, rng));
  ASSIGN_OR_RETURN(auto store,
                   IndexedBlobStore::Open(std::move(objects), config.dir + "/_index.sqlite3"));
  return std::unique_ptr<BlobStore>(std::move(store));
}

}  // namespace regionmove
