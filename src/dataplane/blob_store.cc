#include "dataplane/blob_store.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/text.h"

namespace regionmove {

Status ValidateBlobKey(std::string_view key) {
  auto bad = [](const std::string& why) { return InvalidArgument(why, "invalid_key"); };
  if (key.empty()) return bad("blob key is empty");
  if (key.size() > 1024) return bad("blob key is longer than 1024 bytes");
  if (key.find('\0') != std::string_view::npos) return bad("blob key contains a NUL byte");
  if (!IsValidUtf8(key)) return bad("blob key is not valid UTF-8");
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return bad("blob key contains a control character");
    }
  }
  if (key.front() == '/') return bad("blob key is an absolute path");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    if (key.substr(start, end - start) == "..") return bad("blob key has a '..' segment");
    start = end + 1;
  }
  return Status::Ok();
}

Result<size_t> StringBlobReader::Read(char* buf, size_t n) {
  n = std::min(n, data_.size());
  std::memcpy(buf, data_.data(), n);
  data_.remove_prefix(n);
  return n;
}

Result<BlobInfo> BlobStore::Stage(const std::string& app_id, const std::string& key,
                                  BlobReader& content, const std::string& content_type,
                                  const std::string& expected_sha256) {
  ASSIGN_OR_RETURN(auto writer, StartStage(app_id, key, content_type, expected_sha256));
  std::vector<char> buf(1 << 20);  // memory per blob being staged, whatever its size
  while (true) {
    ASSIGN_OR_RETURN(size_t n, content.Read(buf.data(), buf.size()));
    if (n == 0) break;
    RETURN_IF_ERROR(writer->Write(buf.data(), n));
  }
  return writer->Finish();
}

Result<BlobInfo> BlobStore::Put(const std::string& app_id, const std::string& key,
                                std::string_view data, const std::string& content_type) {
  StringBlobReader content(data);
  ASSIGN_OR_RETURN(BlobInfo staged, Stage(app_id, key, content, content_type));
  RETURN_IF_ERROR(Publish(app_id, {staged}));
  return staged;
}

Result<std::string> BlobStore::Get(const std::string& app_id, const std::string& key,
                                   BlobInfo* info) {
  BlobInfo found;
  ASSIGN_OR_RETURN(auto reader, Open(app_id, key, &found));
  std::string out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(0, found.size)));
  char buf[1 << 16];
  while (true) {
    ASSIGN_OR_RETURN(size_t n, reader->Read(buf, sizeof buf));
    if (n == 0) break;
    out.append(buf, n);
  }
  if (info) *info = found;
  return out;
}

}  // namespace regionmove
