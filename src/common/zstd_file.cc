#include "common/zstd_file.h"

#include <fcntl.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "common/hash.h"

namespace regionmove {

namespace {
struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

Result<File> OpenFile(const std::string& path, const char* mode) {
  File f(std::fopen(path.c_str(), mode));
  if (!f) return Unavailable("cannot open " + path);
  return f;
}
// Starts the write-back of what has been written to `out` every few MiB (sync_file_range,
// which does not wait), so that the fsync that makes the file durable afterwards finds most of
// it on disk already instead of writing it all then: the disk writes while zstd works.
class Writeback {
 public:
  explicit Writeback(FILE* out) : out_(out) {}
  void Wrote(size_t n) {
    pending_ += static_cast<int64_t>(n);
    if (pending_ < kChunk) return;
    if (std::fflush(out_) == 0) {
      ::sync_file_range(fileno(out_), start_, pending_, SYNC_FILE_RANGE_WRITE);
    }
    start_ += pending_;
    pending_ = 0;
  }

 private:
  static constexpr int64_t kChunk = int64_t{8} << 20;
  FILE* out_;
  int64_t start_ = 0, pending_ = 0;
};

}  // namespace

namespace {

// Compresses what `read` gives (it fills a buffer and returns how much; less than asked at the
// end) into `out_path`.
Result<int64_t> Compress(const std::function<size_t(char*, size_t)>& read,
                         const std::string& out_path,
                         const std::function<Status(int64_t)>& progress, std::string* sha256) {
  Sha256 h;
  ASSIGN_OR_RETURN(File out, OpenFile(out_path, "wb"));
  Writeback writeback(out.get());
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 3);
  // Compress on a second thread where libzstd has them (ignored otherwise).
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_nbWorkers, 2);
  std::vector<char> ibuf(ZSTD_CStreamInSize()), obuf(ZSTD_CStreamOutSize());
  int64_t read_total = 0, written = 0;
  while (true) {
    size_t n = read(ibuf.data(), ibuf.size());
    bool last = n < ibuf.size();
    read_total += static_cast<int64_t>(n);
    ZSTD_inBuffer input{ibuf.data(), n, 0};
    ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
    bool done = false;
    while (!done) {
      ZSTD_outBuffer output{obuf.data(), obuf.size(), 0};
      size_t rem = ZSTD_compressStream2(cctx.get(), &output, &input, mode);
      if (ZSTD_isError(rem)) return Permanent(std::string("zstd: ") + ZSTD_getErrorName(rem));
      if (std::fwrite(obuf.data(), 1, output.pos, out.get()) != output.pos) {
        return Unavailable("short write to " + out_path);
      }
      if (sha256) h.Update(obuf.data(), output.pos);
      writeback.Wrote(output.pos);
      written += static_cast<int64_t>(output.pos);
      done = last ? rem == 0 : input.pos == input.size;
    }
    if (progress) RETURN_IF_ERROR(progress(read_total));
    if (last) break;
  }
  if (std::fflush(out.get()) != 0) return Unavailable("flush " + out_path);
  if (sha256) *sha256 = h.HexDigest();
  return written;
}

}  // namespace

Result<int64_t> ZstdCompressFile(const std::string& in_path, const std::string& out_path,
                                 const std::function<Status(int64_t)>& progress,
                                 std::string* sha256, int64_t length) {
  ASSIGN_OR_RETURN(File in, OpenFile(in_path, "rb"));
  int64_t left = length;
  auto read = [&](char* buf, size_t n) {
    if (left >= 0) n = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(n)));
    size_t got = n > 0 ? std::fread(buf, 1, n, in.get()) : 0;
    if (left >= 0) left -= static_cast<int64_t>(got);
    return got;
  };
  ASSIGN_OR_RETURN(int64_t written, Compress(read, out_path, progress, sha256));
  if (left > 0) return Corruption(in_path + " ended " + std::to_string(left) + " bytes early");
  return written;
}

Result<int64_t> ZstdCompressBuffer(std::string_view data, const std::string& out_path,
                                   const std::function<Status(int64_t)>& progress,
                                   std::string* sha256) {
  size_t pos = 0;
  auto read = [&](char* buf, size_t n) {
    n = std::min(n, data.size() - pos);
    std::memcpy(buf, data.data() + pos, n);
    pos += n;
    return n;
  };
  return Compress(read, out_path, progress, sha256);
}

Result<int64_t> ZstdDecompressFile(const std::string& in_path, const std::string& out_path,
                                   const std::function<Status(int64_t)>& progress,
                                   std::string* sha256) {
  ASSIGN_OR_RETURN(File in, OpenFile(in_path, "rb"));
  Sha256 h;
  ASSIGN_OR_RETURN(File out, OpenFile(out_path, "wb"));
  Writeback writeback(out.get());
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::vector<char> ibuf(ZSTD_DStreamInSize()), obuf(ZSTD_DStreamOutSize());
  int64_t written = 0;
  size_t last_ret = 0;
  while (size_t n = std::fread(ibuf.data(), 1, ibuf.size(), in.get())) {
    if (sha256) h.Update(ibuf.data(), n);
    ZSTD_inBuffer input{ibuf.data(), n, 0};
    while (input.pos < input.size) {
      ZSTD_outBuffer output{obuf.data(), obuf.size(), 0};
      last_ret = ZSTD_decompressStream(dctx.get(), &output, &input);
      if (ZSTD_isError(last_ret)) {
        return Corruption(std::string("zstd: ") + ZSTD_getErrorName(last_ret));
      }
      if (std::fwrite(obuf.data(), 1, output.pos, out.get()) != output.pos) {
        return Unavailable("short write to " + out_path);
      }
      writeback.Wrote(output.pos);
      written += static_cast<int64_t>(output.pos);
    }
    if (progress) RETURN_IF_ERROR(progress(written));
  }
  if (last_ret != 0) return Corruption("truncated zstd stream in " + in_path);
  if (std::fflush(out.get()) != 0) return Unavailable("flush " + out_path);
  if (sha256) *sha256 = h.HexDigest();
  return written;
}

}  // namespace regionmove
