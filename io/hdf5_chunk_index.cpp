// Reading an HDF5 chunk index from the file's bytes (see hdf5_chunk_index.h). The structures are
// those of the HDF5 File Format Specification version 3.0: object header prefixes (IV.A.1.a/b),
// the data layout message (IV.A.2.i), version 1 B-tree nodes (III.A.1) and the fixed array
// header and data block (VII.C). All integers are little-endian.
#include "io/hdf5_chunk_index.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "engine/file_io.h"

namespace seis {

uint32_t h5_checksum_lookup3(const uint8_t* k, size_t length) {
  auto rot = [](uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  uint32_t a, b, c;
  a = b = c = 0xdeadbeefu + static_cast<uint32_t>(length);
  auto u32 = [&](size_t o) {
    return uint32_t(k[o]) | (uint32_t(k[o + 1]) << 8) | (uint32_t(k[o + 2]) << 16) | (uint32_t(k[o + 3]) << 24);
  };
  while (length > 12) {
    a += u32(0);
    b += u32(4);
    c += u32(8);
    a -= c, a ^= rot(c, 4), c += b;
    b -= a, b ^= rot(a, 6), a += c;
    c -= b, c ^= rot(b, 8), b += a;
    a -= c, a ^= rot(c, 16), c += b;
    b -= a, b ^= rot(a, 19), a += c;
    c -= b, c ^= rot(b, 4), b += a;
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  uint8_t tail[12] = {};
  std::memcpy(tail, k, length);
  a += uint32_t(tail[0]) | (uint32_t(tail[1]) << 8) | (uint32_t(tail[2]) << 16) | (uint32_t(tail[3]) << 24);
  b += uint32_t(tail[4]) | (uint32_t(tail[5]) << 8) | (uint32_t(tail[6]) << 16) | (uint32_t(tail[7]) << 24);
  c += uint32_t(tail[8]) | (uint32_t(tail[9]) << 8) | (uint32_t(tail[10]) << 16) | (uint32_t(tail[11]) << 24);
  c ^= b, c -= rot(b, 14);
  a ^= c, a -= rot(c, 11);
  b ^= a, b -= rot(a, 25);
  c ^= b, c -= rot(b, 16);
  a ^= c, a -= rot(c, 4);
  b ^= a, b -= rot(a, 14);
  c ^= b, c -= rot(b, 24);
  return c;
}

namespace {

constexpr int kMaxRank = 32;

// Thrown inside this file only, caught by read_chunk_index: a reason to fall back.
struct Unsupported {
  std::string why;
};

[[noreturn]] void give_up(const std::string& why) { throw Unsupported{why}; }

// The file's bytes, every read checked against its size.
struct File {
  int fd = -1;
  int64_t size = 0;
  int offset_bytes = 8, length_bytes = 8;  // the superblock's "size of offsets" and "size of lengths"

  std::vector<uint8_t> read(int64_t addr, int64_t bytes, const char* what) const {
    if (addr < 0 || bytes < 0 || bytes > size || addr > size - bytes) {
      give_up(std::string(what) + " at " + std::to_string(addr) + " (+" + std::to_string(bytes) +
              " bytes) lies outside the file");
    }
    std::vector<uint8_t> buf(static_cast<size_t>(bytes));
    std::string err;
    if (!pread_full(fd, buf.data(), bytes, addr, &err)) give_up(std::string("cannot read ") + what + ": " + err);
    return buf;
  }
};

// A bounds-checked little-endian decoder over a byte buffer.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, const char* what) : p_(p), n_(n), what_(what) {}
  uint64_t uint(int bytes) {
    need(static_cast<size_t>(bytes));
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(p_[pos_ + size_t(i)]) << (8 * i);
    pos_ += static_cast<size_t>(bytes);
    return v;
  }
  uint8_t u8() { return static_cast<uint8_t>(uint(1)); }
  // An address of `bytes` bytes; -1 for the undefined address (all bits set).
  int64_t addr(int bytes) {
    const uint64_t v = uint(bytes);
    const uint64_t undef = bytes == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * bytes)) - 1;
    if (v == undef) return -1;
    if (v > uint64_t(INT64_MAX)) give_up(std::string(what_) + ": address out of range");
    return static_cast<int64_t>(v);
  }
  void skip(size_t n) {
    need(n);
    pos_ += n;
  }
  bool signature(const char* sig) {
    need(4);
    const bool ok = std::memcmp(p_ + pos_, sig, 4) == 0;
    pos_ += 4;
    return ok;
  }
  size_t pos() const { return pos_; }
  size_t left() const { return n_ - pos_; }

 private:
  void need(size_t k) const {
    if (k > n_ - pos_) give_up(std::string(what_) + " is truncated");
  }
  const uint8_t* p_;
  size_t n_, pos_ = 0;
  const char* what_;
};

// The stored checksum (the last 4 bytes of buf[0, end)) against lookup3 of the bytes before it.
void check_checksum(const std::vector<uint8_t>& buf, size_t end, const char* what) {
  if (end < 4 || end > buf.size()) give_up(std::string(what) + ": bad size for a checksum");
  Cursor c(buf.data() + end - 4, 4, what);
  if (c.uint(4) != h5_checksum_lookup3(buf.data(), end - 4)) give_up(std::string(what) + ": checksum mismatch");
}

constexpr int kMsgLayout = 0x0008, kMsgContinuation = 0x0010;

// The body of the dataset's data layout message, walking the object header and its continuations.
std::vector<uint8_t> layout_message(const File& f, int64_t header_addr) {
  std::vector<uint8_t> sig = f.read(header_addr, 4, "the object header");
  const bool v2 = std::memcmp(sig.data(), "OHDR", 4) == 0;
  struct Block {
    int64_t addr, size;
  };
  std::vector<Block> todo;
  bool crt_order = false;  // v2: messages carry a creation-order field
  int64_t first_msgs = 0;  // where the messages of the first block start, within it
  if (v2) {
    std::vector<uint8_t> pre = f.read(header_addr, std::min<int64_t>(f.size - header_addr, 32), "the object header");
    Cursor c(pre.data(), pre.size(), "object header prefix");
    c.skip(4);
    if (c.u8() != 2) give_up("object header version is not 2");
    const uint8_t flags = c.u8();
    if (flags & 0x20) c.skip(16);  // access, modification, change and birth times
    if (flags & 0x10) c.skip(4);   // attribute phase change values
    crt_order = (flags & 0x04) != 0;
    const uint64_t chunk0 = c.uint(1 << (flags & 0x03));
    first_msgs = static_cast<int64_t>(c.pos());
    if (chunk0 > uint64_t(f.size)) give_up("object header chunk larger than the file");
    todo.push_back({header_addr, first_msgs + static_cast<int64_t>(chunk0) + 4});
  } else {
    std::vector<uint8_t> pre = f.read(header_addr, 16, "the object header");
    Cursor c(pre.data(), pre.size(), "object header prefix");
    if (c.u8() != 1) give_up("object header version is neither 1 nor 2");
    c.skip(1 + 2 + 4);  // reserved, number of messages, reference count
    const uint64_t size = c.uint(4);
    first_msgs = 16;  // the 12-byte prefix padded to 8
    todo.push_back({header_addr, 16 + static_cast<int64_t>(size)});
  }
  const int msg_header = v2 ? (crt_order ? 6 : 4) : 8;
  for (size_t blk = 0; blk < todo.size(); ++blk) {
    if (blk >= 64) give_up("more than 64 object header blocks");
    const Block b = todo[blk];
    std::vector<uint8_t> buf = f.read(b.addr, b.size, "an object header block");
    size_t start = blk == 0 ? size_t(first_msgs) : 0, end = buf.size();
    if (v2) {
      if (blk > 0 && (buf.size() < 8 || std::memcmp(buf.data(), "OCHK", 4) != 0))
        give_up("object header continuation block without its OCHK signature");
      if (blk > 0) start = 4;
      check_checksum(buf, buf.size(), "object header");
      end = buf.size() - 4;
    }
    Cursor c(buf.data() + start, end - start, "object header messages");
    while (c.left() >= size_t(msg_header)) {
      const int type = v2 ? c.u8() : static_cast<int>(c.uint(2));
      const size_t size = c.uint(2);
      const uint8_t flags = c.u8();
      c.skip(v2 ? (crt_order ? 2 : 0) : 3);
      if (size > c.left()) give_up("object header message runs past its block");
      const uint8_t* body = buf.data() + start + c.pos();
      if (type == kMsgLayout) {
        if (flags & 0x02) give_up("shared data layout message");
        return std::vector<uint8_t>(body, body + size);
      }
      if (type == kMsgContinuation) {
        Cursor m(body, size, "continuation message");
        const int64_t addr = m.addr(f.offset_bytes);
        const uint64_t len = m.uint(f.length_bytes);
        if (addr < 0 || len > uint64_t(f.size)) give_up("bad object header continuation");
        todo.push_back({addr, static_cast<int64_t>(len)});
      }
      c.skip(size);
    }
  }
  give_up("no data layout message in the object header");
}

// What the library says about the dataset, which the file's bytes must agree with.
struct Shape {
  int rank = 0;
  hsize_t dims[kMaxRank] = {}, maxdims[kMaxRank] = {}, chunk[kMaxRank] = {};
  int64_t grid[kMaxRank] = {};  // chunks per dimension (current dims)
  int64_t nchunks = 1;          // in the grid
  int64_t elem_bytes = 0;
  int64_t chunk_bytes = 0;  // unfiltered
  bool filtered = false;
};

struct Walk {
  const File& f;
  const Shape& s;
  std::vector<H5ChunkLocation>* out;

  void add(int64_t index, int64_t addr, int64_t size, uint32_t mask) {
    if (index < 0 || index >= s.nchunks) give_up("chunk outside the dataset's current extent");
    // A chunk past the end of the file is reported, not refused: the caller names the truncation.
    if (size <= 0 || addr < 0 || size > (int64_t{1} << 40) || addr > (int64_t{1} << 56))
      give_up("chunk " + std::to_string(index) + " at " + std::to_string(addr) + " (+" + std::to_string(size) +
              " bytes): impossible address or size");
    if (!out->empty() && out->back().index >= index) give_up("chunks out of order in the index");
    out->push_back({index, addr, size, mask});
  }

  // Row-major index of the chunk whose first element has these coordinates.
  int64_t index_of(const uint64_t* coord) const {
    int64_t idx = 0;
    for (int d = 0; d < s.rank; ++d) {
      if (coord[d] % s.chunk[d] != 0) give_up("chunk offset not on the chunk grid");
      const uint64_t scaled = coord[d] / s.chunk[d];
      if (scaled >= uint64_t(s.grid[d])) give_up("chunk outside the dataset's current extent");
      idx = idx * s.grid[d] + static_cast<int64_t>(scaled);
    }
    return idx;
  }

  // Version 1 B-tree of chunks (node type 1), depth first, left to right: ascending offsets.
  void btree_v1(int64_t addr, int expect_level, int depth, int64_t* nodes) {
    if (depth > 64 || ++*nodes > 100000000) give_up("v1 B-tree too deep or too large");
    const int O = f.offset_bytes;
    const int64_t key_bytes = 8 + 8 * int64_t(s.rank + 1);
    const int64_t head = 8 + 2 * O;
    std::vector<uint8_t> pre = f.read(addr, head, "a v1 B-tree node");
    Cursor c(pre.data(), pre.size(), "v1 B-tree node");
    if (!c.signature("TREE")) give_up("v1 B-tree node without its TREE signature");
    if (c.u8() != 1) give_up("v1 B-tree node is not of chunk type");
    const int level = c.u8();
    const int64_t used = static_cast<int64_t>(c.uint(2));
    if (expect_level >= 0 && level != expect_level) give_up("v1 B-tree levels inconsistent");
    const int64_t body_bytes = used * (key_bytes + O) + key_bytes;
    std::vector<uint8_t> body = f.read(addr + head, body_bytes, "a v1 B-tree node");
    Cursor b(body.data(), body.size(), "v1 B-tree node");
    for (int64_t e = 0; e < used; ++e) {
      const uint64_t csize = b.uint(4);
      const uint32_t mask = static_cast<uint32_t>(b.uint(4));
      uint64_t coord[kMaxRank + 1];
      for (int d = 0; d <= s.rank; ++d) coord[d] = b.uint(8);
      const int64_t child = b.addr(O);
      if (child < 0) give_up("undefined child address in a v1 B-tree node");
      if (level > 0) {
        btree_v1(child, level - 1, depth + 1, nodes);
      } else {
        if (coord[s.rank] != 0) give_up("chunk key with a nonzero datatype offset");
        add(index_of(coord), child, static_cast<int64_t>(csize), mask);
      }
    }
  }

  // Fixed array: header "FAHD", data block "FADB", paged when it holds more than 2^page_bits.
  void fixed_array(int64_t hdr_addr) {
    const int O = f.offset_bytes, L = f.length_bytes;
    const int64_t hdr_bytes = 4 + 1 + 1 + 1 + 1 + L + O + 4;
    std::vector<uint8_t> hdr = f.read(hdr_addr, hdr_bytes, "the fixed array header");
    check_checksum(hdr, hdr.size(), "fixed array header");
    Cursor c(hdr.data(), hdr.size(), "fixed array header");
    if (!c.signature("FAHD") || c.u8() != 0) give_up("not a version 0 fixed array header");
    const int client = c.u8();
    const int entry = c.u8();
    const int page_bits = c.u8();
    const uint64_t nelmts = c.uint(L);
    const int64_t dblk = c.addr(O);
    if (client != (s.filtered ? 1 : 0)) give_up("fixed array client does not match the filters");
    if (nelmts != uint64_t(s.nchunks)) give_up("fixed array size does not match the chunk grid");
    const int size_bytes = s.filtered ? entry - O - 4 : 0;  // filtered: address, size, filter mask
    if (s.filtered ? (size_bytes < 1 || size_bytes > 8) : entry != O) give_up("bad fixed array entry size");
    if (page_bits < 1 || page_bits > 32) give_up("bad fixed array page bits");
    if (dblk < 0) return;  // nothing allocated
    const int64_t n = static_cast<int64_t>(nelmts);
    const int64_t page_n = int64_t{1} << page_bits;
    const bool paged = n > page_n;
    const int64_t npages = paged ? (n + page_n - 1) / page_n : 0;
    const int64_t bitmap = (npages + 7) / 8;
    const int64_t prefix = 4 + 1 + 1 + O + bitmap + 4;  // the checksum ends the prefix when paged
    auto element = [&](Cursor& e, int64_t idx) {
      const int64_t a = e.addr(O);
      const int64_t size = s.filtered ? static_cast<int64_t>(e.uint(size_bytes)) : s.chunk_bytes;
      const uint32_t mask = s.filtered ? static_cast<uint32_t>(e.uint(4)) : 0;
      if (a >= 0) add(idx, a, size, mask);
    };
    if (!paged) {
      if (n > (f.size - prefix) / entry) give_up("fixed array larger than the file");
      std::vector<uint8_t> blk = f.read(dblk, prefix + n * entry, "the fixed array data block");
      check_checksum(blk, blk.size(), "fixed array data block");
      Cursor e(blk.data(), blk.size(), "fixed array data block");
      if (!e.signature("FADB") || e.u8() != 0 || e.u8() != client || e.addr(O) != hdr_addr)
        give_up("fixed array data block does not match its header");
      for (int64_t i = 0; i < n; ++i) element(e, i);
      return;
    }
    std::vector<uint8_t> pre = f.read(dblk, prefix, "the fixed array data block");
    check_checksum(pre, pre.size(), "fixed array data block prefix");
    Cursor p(pre.data(), pre.size(), "fixed array data block");
    if (!p.signature("FADB") || p.u8() != 0 || p.u8() != client || p.addr(O) != hdr_addr)
      give_up("fixed array data block does not match its header");
    const uint8_t* init = pre.data() + p.pos();
    const int64_t page_bytes = page_n * entry + 4;
    for (int64_t pg = 0; pg < npages; ++pg) {
      if (!(init[pg / 8] & (0x80 >> (pg % 8)))) continue;  // never written: all its chunks unallocated
      const int64_t count = std::min(page_n, n - pg * page_n);
      if (pg > (f.size - dblk - prefix) / page_bytes) give_up("fixed array page outside the file");
      std::vector<uint8_t> page = f.read(dblk + prefix + pg * page_bytes, count * entry + 4, "a fixed array page");
      check_checksum(page, page.size(), "fixed array page");
      Cursor e(page.data(), page.size(), "fixed array page");
      for (int64_t i = 0; i < count; ++i) element(e, pg * page_n + i);
    }
  }
};

void read_index(const File& f, const Shape& s, const std::vector<uint8_t>& msg, std::vector<H5ChunkLocation>* out) {
  const int O = f.offset_bytes, L = f.length_bytes;
  Cursor c(msg.data(), msg.size(), "data layout message");
  const int version = c.u8();
  if (c.u8() != 2) give_up("data layout message is not of the chunked class");
  Walk w{f, s, out};
  uint64_t cdims[kMaxRank + 1] = {};
  auto check_dims = [&](int dimensionality) {
    if (dimensionality != s.rank + 1) give_up("layout message rank differs from the dataspace's");
    for (int d = 0; d < s.rank; ++d) {
      if (cdims[d] != s.chunk[d]) give_up("layout message chunk shape differs from the library's");
    }
    if (cdims[s.rank] != uint64_t(s.elem_bytes)) give_up("layout message element size differs from the type's");
  };
  if (version == 3) {
    const int nd = c.u8();
    const int64_t btree = c.addr(O);
    if (nd < 2 || nd > kMaxRank + 1) give_up("bad layout dimensionality");
    for (int d = 0; d < nd; ++d) cdims[d] = c.uint(4);
    check_dims(nd);
    int64_t nodes = 0;
    if (btree >= 0) w.btree_v1(btree, -1, 0, &nodes);
    return;
  }
  if (version != 4) give_up("data layout message version " + std::to_string(version));
  const uint8_t flags = c.u8();
  const int nd = c.u8();
  const int enc = c.u8();
  if (nd < 2 || nd > kMaxRank + 1 || enc < 1 || enc > 8) give_up("bad layout dimensions");
  for (int d = 0; d < nd; ++d) cdims[d] = c.uint(enc);
  check_dims(nd);
  const int index_type = c.u8();
  bool fixed_extent = true;
  for (int d = 0; d < s.rank; ++d) fixed_extent = fixed_extent && s.maxdims[d] == s.dims[d];
  if (index_type == 1) {  // single chunk: the whole dataset
    uint64_t size = uint64_t(s.chunk_bytes);
    uint32_t mask = 0;
    if (flags & 0x02) {
      size = c.uint(L);
      mask = static_cast<uint32_t>(c.uint(4));
    }
    const int64_t addr = c.addr(O);
    if (s.nchunks != 1 || (s.filtered != ((flags & 0x02) != 0))) give_up("single-chunk index of an odd dataset");
    if (addr >= 0) w.add(0, addr, static_cast<int64_t>(size), mask);
  } else if (index_type == 2) {  // implicit: every chunk allocated, one after the other
    const int64_t addr = c.addr(O);
    if (s.filtered || !fixed_extent) give_up("implicit index of a filtered or extendible dataset");
    if (addr < 0) return;
    if (s.nchunks > (int64_t{1} << 56) / s.chunk_bytes) give_up("implicitly indexed chunks: impossible size");
    out->reserve(static_cast<size_t>(s.nchunks));
    for (int64_t i = 0; i < s.nchunks; ++i) w.add(i, addr + i * s.chunk_bytes, s.chunk_bytes, 0);
  } else if (index_type == 3) {  // fixed array
    c.skip(1);                   // page bits, repeated in the array's header
    const int64_t addr = c.addr(O);
    if (!fixed_extent) give_up("fixed array index of an extendible dataset");
    if (addr >= 0) w.fixed_array(addr);
  } else {
    give_up(index_type == 4   ? "extensible array chunk index (unlimited dimension, libver latest)"
            : index_type == 5 ? "version 2 B-tree chunk index (several unlimited dimensions)"
                              : "unknown chunk index type " + std::to_string(index_type));
  }
}

// No two chunks share a byte: true of every file the library writes, false of most misreadings.
void check_no_overlap(const std::vector<H5ChunkLocation>& chunks) {
  std::vector<std::pair<int64_t, int64_t>> spans;
  spans.reserve(chunks.size());
  for (const H5ChunkLocation& c : chunks) spans.emplace_back(c.addr, c.size);
  std::sort(spans.begin(), spans.end());
  for (size_t k = 1; k < spans.size(); ++k) {
    if (spans[k - 1].first + spans[k - 1].second > spans[k].first) give_up("two chunks overlap in the file");
  }
}

Shape library_shape(hid_t dset) {
  Shape s;
  hid_t space = H5Dget_space(dset);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank >= 1 && rank <= kMaxRank) H5Sget_simple_extent_dims(space, s.dims, s.maxdims);
  H5Sclose(space);
  if (rank < 1 || rank > kMaxRank) give_up("unsupported rank");
  s.rank = rank;
  hid_t dcpl = H5Dget_create_plist(dset);
  const bool chunked = H5Pget_layout(dcpl) == H5D_CHUNKED;
  const int crank = chunked ? H5Pget_chunk(dcpl, kMaxRank, s.chunk) : -1;
  s.filtered = H5Pget_nfilters(dcpl) > 0;
  H5Pclose(dcpl);
  if (!chunked || crank != rank) give_up("not a chunked dataset");
  hid_t type = H5Dget_type(dset);
  s.elem_bytes = static_cast<int64_t>(H5Tget_size(type));
  H5Tclose(type);
  if (s.elem_bytes <= 0) give_up("no element size");
  s.chunk_bytes = s.elem_bytes;
  for (int d = 0; d < rank; ++d) {
    if (s.chunk[d] == 0 || s.chunk[d] > (uint64_t{1} << 32)) give_up("bad chunk shape");
    s.grid[d] = static_cast<int64_t>((s.dims[d] + s.chunk[d] - 1) / s.chunk[d]);
    if (s.grid[d] != 0 && s.nchunks > INT64_MAX / 4 / s.grid[d]) give_up("chunk grid too large");
    s.nchunks *= s.grid[d];
    if (s.chunk_bytes > (int64_t{1} << 40) / static_cast<int64_t>(s.chunk[d])) give_up("chunk too large");
    s.chunk_bytes *= static_cast<int64_t>(s.chunk[d]);
  }
  return s;
}

File library_file(int fd, hid_t dset) {
  File f;
  f.fd = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0) give_up("cannot stat the file");
  f.size = static_cast<int64_t>(st.st_size);
  hid_t file = H5Iget_file_id(dset);
  hid_t fcpl = H5Fget_create_plist(file);
  hid_t fapl = H5Fget_access_plist(file);
  size_t sa = 0, sl = 0;
  hsize_t userblock = 1;
  const bool sizes_ok = H5Pget_sizes(fcpl, &sa, &sl) >= 0 && H5Pget_userblock(fcpl, &userblock) >= 0;
  const bool sec2 = H5Pget_driver(fapl) == H5FD_SEC2;
  H5Pclose(fapl);
  H5Pclose(fcpl);
  H5Fclose(file);
  if (!sizes_ok) give_up("cannot read the file's creation properties");
  if (!sec2) give_up("not the sec2 file driver");
  if (userblock != 0) give_up("file with a user block (addresses are relative to it)");
  if (sa < 2 || sa > 8 || sl < 2 || sl > 8) give_up("unsupported sizes of offsets/lengths");
  f.offset_bytes = static_cast<int>(sa);
  f.length_bytes = static_cast<int>(sl);
  return f;
}

haddr_t object_header_addr(hid_t dset) {
#if H5_VERSION_GE(1, 12, 0)  // object tokens (not built against here: Debian ships 1.10)
  H5O_info2_t oinfo;
  haddr_t addr = HADDR_UNDEF;
  if (H5Oget_info3(dset, &oinfo, H5O_INFO_BASIC) < 0) give_up("cannot find the object header");
  const hid_t file = H5Iget_file_id(dset);
  const herr_t rc = H5VLnative_token_to_addr(file, oinfo.token, &addr);
  H5Fclose(file);
  if (rc < 0) give_up("cannot find the object header");
  return addr;
#else
  H5O_info_t oinfo;
  if (H5Oget_info2(dset, &oinfo, H5O_INFO_BASIC) < 0) give_up("cannot find the object header");
  return oinfo.addr;
#endif
}

}  // namespace

bool read_chunk_index(int fd, hid_t dset, std::vector<H5ChunkLocation>* chunks, std::string* why_not) {
  chunks->clear();
  try {
    const File f = library_file(fd, dset);
    const Shape s = library_shape(dset);
    const haddr_t header = object_header_addr(dset);
    if (header == HADDR_UNDEF || header > haddr_t(f.size)) give_up("object header outside the file");
    const std::vector<uint8_t> msg = layout_message(f, static_cast<int64_t>(header));
    read_index(f, s, msg, chunks);
    check_no_overlap(*chunks);
    return true;
  } catch (const Unsupported& u) {
    H5Eclear2(H5E_DEFAULT);
    chunks->clear();
    if (why_not != nullptr) *why_not = u.why;
    return false;
  } catch (const std::bad_alloc&) {
    chunks->clear();
    if (why_not != nullptr) *why_not = "out of memory reading the chunk index";
    return false;
  }
}

bool verify_chunk_index(hid_t dset, const std::vector<H5ChunkLocation>& chunks, std::string* why_not,
                        int64_t check_all_below) {
  const int64_t n = static_cast<int64_t>(chunks.size());
  std::vector<int64_t> picks;
  if (n <= check_all_below) {
    for (int64_t k = 0; k < n; ++k) picks.push_back(k);
  } else {
    for (int64_t k = 0; k < 8; ++k) picks.push_back(k);
    for (int64_t k = 0; k < 16; ++k) picks.push_back(k * (n - 1) / 15);
  }
  picks.push_back(n);  // one past the last: the library must know of no more chunks
  std::sort(picks.begin(), picks.end());
  picks.erase(std::unique(picks.begin(), picks.end()), picks.end());

  hid_t space = H5Dget_space(dset);
  const int rank = H5Sget_simple_extent_ndims(space);
  hsize_t dims[kMaxRank] = {}, chunk[kMaxRank] = {};
  hid_t dcpl = H5Dget_create_plist(dset);
  const bool shape_ok = rank >= 1 && rank <= kMaxRank && H5Sget_simple_extent_dims(space, dims, nullptr) == rank &&
                        H5Pget_chunk(dcpl, kMaxRank, chunk) == rank;
  H5Pclose(dcpl);
  std::string why;
  if (!shape_ok) why = "cannot read the dataset's shape";
  for (size_t p = 0; p < picks.size() && why.empty(); ++p) {
    const int64_t k = picks[p];
    hsize_t off[kMaxRank] = {};
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    const herr_t rc = H5Dget_chunk_info(dset, space, static_cast<hsize_t>(k), off, &mask, &addr, &size);
    if (k == n) {
      if (rc >= 0 && addr != HADDR_UNDEF) why = "the library knows of more than " + std::to_string(n) + " chunks";
      break;
    }
    if (rc < 0 || addr == HADDR_UNDEF) {
      why = "the library has no chunk number " + std::to_string(k);
      break;
    }
    int64_t index = 0;
    for (int d = 0; d < rank; ++d) {
      const int64_t grid = static_cast<int64_t>((dims[d] + chunk[d] - 1) / chunk[d]);
      index = index * grid + static_cast<int64_t>(off[d] / chunk[d]);
    }
    const H5ChunkLocation& c = chunks[static_cast<size_t>(k)];
    if (index != c.index || int64_t(addr) != c.addr || int64_t(size) != c.size || mask != c.filter_mask) {
      why = "chunk number " + std::to_string(k) + ": the library says index " + std::to_string(index) + " at " +
            std::to_string(addr) + " (" + std::to_string(size) + " bytes, mask " + std::to_string(mask) +
            "), the file walk index " + std::to_string(c.index) + " at " + std::to_string(c.addr) + " (" +
            std::to_string(c.size) + " bytes, mask " + std::to_string(c.filter_mask) + ")";
    }
  }
  H5Sclose(space);
  H5Eclear2(H5E_DEFAULT);
  if (!why.empty() && why_not != nullptr) *why_not = why;
  return why.empty();
}

}  // namespace seis
