// seisseg convert of an HDF5 dataset file, run as a program: files written by h5py (compressed, odd
// chunks, contiguous, float16, float labels, stale statistics) become files the reader reads with
// pread, holding the same gathers and labels bit for bit and the reader's own statistics; every other
// object, link and root attribute is carried over as it was (checked with h5py); training on the
// converted file gives the same weights; bad inputs and flags exit with one line and leave nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli_util.h"
#include "io/hdf5_dataset.h"
#include "io/normalize.h"

namespace seis {
namespace {

using Result = test::CliResult;
using test::file_exists;

std::string dir() {
  static const std::string d = test::process_dir("seis_convert_h5");
  return d;
}

std::string path(const std::string& name) { return dir() + "/" + name; }

Result run(const std::string& args) { return test::run_seisseg(args); }

// The files users write: N = 5 gathers of 24 x 20, in several layouts, with other objects beside them.
void write_inputs() {
  static bool done = false;
  if (done) return;
  done = true;
  std::system(("mkdir -p " + dir()).c_str());
  ASSERT_EQ(test::run_h5py_script(path("inputs.py"), R"(
d = sys.argv[1]
rng = np.random.default_rng(11)
N, H, W = 5, 24, 20
data = (rng.standard_normal((N, H, W)) * 3 + 1).astype(np.float32)
data[1, :, 3] = 7.0  # a dead trace
lab = (rng.random((N, H, W)) < 0.2).astype(np.float32)
lab[0, 0, :3] = [0.5, -1.0, 2.0]  # nonzero counts as 1
def extras(f):
    f.attrs['dt'] = 0.002
    f.attrs['dx'] = np.int32(5)
    f.attrs['note'] = 'a variable-length string'
    f.attrs['fixed'] = np.bytes_('fixed12')
    f.attrs['grid'] = np.arange(6, dtype=np.int16).reshape(2, 3)
    f.attrs['names'] = ['a', 'bb', 'ccc']
    t = np.zeros(3, dtype=[('gather', '<i8'), ('time_s', '<f8'), ('phase', 'u1')])
    t['gather'] = [0, 1, 4]
    t['time_s'] = [0.1, 0.2, 0.3]
    f.create_dataset('mytable', data=t, maxshape=(None,), chunks=(2,))
    g = f.create_group('meta')
    g.attrs['who'] = 'survey 7'
    g.create_dataset('x', data=np.arange(10.0), compression='gzip')
    g['x'].attrs['unit'] = 'm'
    g['alias'] = h5py.SoftLink('/meta/x')
    f['soft'] = h5py.SoftLink('/mytable')
    f['ext'] = h5py.ExternalLink('elsewhere.h5', '/data')
    f.create_dataset('trace_valid', data=np.ones((N, W), np.uint8))
with h5py.File(f'{d}/f32.h5', 'w') as f:
    f.create_dataset('data', data=data, chunks=(2, 12, 20), compression='gzip')
    f.create_dataset('label', data=lab)
    f['data'].attrs['units'] = 'micrometres per second'
    f['data'].attrs['gain'] = np.float32(2.5)
    f['label'].attrs['phases'] = 'P and S'
    f.create_dataset('trace_norm', data=np.zeros((N, 2, W), np.float32))  # stale: not these gathers'
    f.create_dataset('sample_norm', data=np.zeros((N, 2), np.float64))
    extras(f)
with h5py.File(f'{d}/f16.h5', 'w') as f:
    f.create_dataset('data', data=data.astype(np.float16))
    f.attrs['dt'] = 0.004
with h5py.File(f'{d}/nan.h5', 'w') as f:
    bad = data.copy()
    bad[3, 5, 6] = np.nan
    f.create_dataset('data', data=bad, chunks=(1, H, W))
    f.attrs['ref'] = f['data'].ref
with h5py.File(f'{d}/padded.h5', 'w') as f:  # the last 3 traces padding, holding NaN
    bad = data.copy()
    bad[:, :, 17:] = np.nan
    f.create_dataset('data', data=bad, chunks=(1, H, W))
    valid = np.ones((N, W), np.uint8)
    valid[:, 17:] = 0
    f.create_dataset('trace_valid', data=valid)
with h5py.File(f'{d}/damaged.h5', 'w') as f:  # gather 2's compressed chunk damaged in the middle
    f.create_dataset('data', data=data, chunks=(1, H, W), compression='gzip')
    info = f['data'].id.get_chunk_info_by_coord((2, 0, 0))
damaged_at = info.byte_offset + info.size // 2
with open(f'{d}/damaged.h5', 'r+b') as g:
    g.seek(damaged_at)
    g.write(b'\x00\xff' * 16)
with h5py.File(f'{d}/record.h5', 'w') as f:
    f.create_dataset('data', data=data[0])
with h5py.File(f'{d}/nodata.h5', 'w') as f:
    f.create_dataset('other', data=data)
)",
                                  dir()),
            0);
}

// h5py's view: every link under the root of `in` but the gathers and their statistics is in `out`,
// as it was (datasets' values, types, shapes, chunks, filters and attributes; groups recursively;
// soft and external links to the same targets); so is every root attribute, and `out` adds only
// converted_from, /trace_norm and /sample_norm.
int compare_with_h5py(const std::string& in, const std::string& out) {
  return test::run_h5py_script(path("compare.py"), R"(
a = h5py.File(sys.argv[1], 'r'); b = h5py.File(sys.argv[2], 'r')
def same_attrs(x, y, extra=()):
    assert set(y.attrs.keys()) == set(x.attrs.keys()) | set(extra), (x.name, list(x.attrs), list(y.attrs))
    for k in x.attrs:
        u, v = x.attrs[k], y.attrs[k]
        assert type(u) == type(v), (x.name, k, type(u), type(v))
        assert np.array_equal(np.asarray(u), np.asarray(v)), (x.name, k, u, v)
        assert x.attrs.get_id(k).dtype == y.attrs.get_id(k).dtype, (x.name, k)
def same(x, y, name, root):
    lx = x.get(name, getlink=True); ly = y.get(name, getlink=True)
    assert type(lx) == type(ly), (name, lx, ly)
    if isinstance(lx, h5py.SoftLink):
        assert lx.path == ly.path, (name, lx.path, ly.path); return
    if isinstance(lx, h5py.ExternalLink):
        assert (lx.filename, lx.path) == (ly.filename, ly.path), name; return
    ox, oy = x[name], y[name]
    assert type(ox) == type(oy), name
    same_attrs(ox, oy)
    if isinstance(ox, h5py.Dataset):
        assert ox.dtype == oy.dtype and ox.shape == oy.shape, (name, ox.dtype, oy.dtype)
        assert ox.chunks == oy.chunks and ox.compression == oy.compression, (name, ox.chunks, oy.chunks)
        assert np.array_equal(ox[()], oy[()]), name
    else:
        assert set(ox.keys()) == set(oy.keys()), (name, list(ox), list(oy))
        for k in ox: same(ox, oy, k, False)
for k in ('data', 'label'):
    if k in a: same_attrs(a[k], b[k])
ours = {'data', 'label', 'trace_norm', 'sample_norm'}
assert set(b.keys()) == (set(a.keys()) - ours) | {'data', 'trace_norm', 'sample_norm'} | ({'label'} & set(a.keys())), (list(a), list(b))
for k in a:
    if k not in ours: same(a, b, k, True)
same_attrs(a, b, extra=['converted_from'])
assert b.attrs['converted_from'] == sys.argv[1].split('/')[-1]
)",
                               in + " " + out);
}

// The converted file reads as the input reads (bits, labels as the reader decodes them, padding
// traces as zeros), with pread, and stores the reader's own statistics of those values.
void expect_same_gathers(const std::string& in, const std::string& out) {
  const H5SampleFile a(in), b(out);
  const H5DatasetInfo &ai = a.info(), &bi = b.info();
  ASSERT_EQ(bi.n, ai.n);
  ASSERT_EQ(bi.height, ai.height);
  ASSERT_EQ(bi.width, ai.width);
  EXPECT_EQ(bi.data_type, ai.data_type);
  EXPECT_EQ(bi.label_type, ai.label_type == H5ElemType::none ? H5ElemType::none : H5ElemType::u8);
  EXPECT_TRUE(bi.data_chunked_per_sample);
  EXPECT_EQ(bi.data_filters, "");
  EXPECT_TRUE(bi.data_direct);
  EXPECT_EQ(bi.label_direct, ai.label_type != H5ElemType::none);
  EXPECT_TRUE(bi.has_trace_norm && bi.has_sample_norm);
  EXPECT_TRUE(bi.trace_norm_direct && bi.sample_norm_direct);
  const int64_t hw = ai.height * ai.width;
  std::vector<float> da(static_cast<size_t>(hw)), db(static_cast<size_t>(hw));
  std::vector<uint8_t> la(static_cast<size_t>(hw)), lb(static_cast<size_t>(hw));
  const bool labels = ai.label_type != H5ElemType::none;
  for (int64_t i = 0; i < ai.n; ++i) {
    SCOPED_TRACE("gather " + std::to_string(i));
    a.read(i, da.data(), labels ? la.data() : nullptr);
    b.read(i, db.data(), labels ? lb.data() : nullptr);
    // Padding traces read as the reader reads them: zeros.
    std::vector<uint8_t> valid(static_cast<size_t>(ai.width));
    a.read_trace_valid(i, valid.data());
    for (int64_t k = 0; k < hw; ++k) {
      if (valid[static_cast<size_t>(k % ai.width)] == 0) da[static_cast<size_t>(k)] = 0.0f;
    }
    ASSERT_EQ(std::memcmp(da.data(), db.data(), static_cast<size_t>(hw) * 4), 0);
    if (labels) {
      ASSERT_EQ(la, lb);
    }
    GatherNormalizer::Stats trace, sample, stored;
    gather_norm_stats(ai.height, ai.width, da.data(), &trace, &sample);
    ASSERT_TRUE(b.stored_norm_stats(i, Normalize::trace, &stored));
    EXPECT_TRUE(stored.same_bits(trace));
    ASSERT_TRUE(b.stored_norm_stats(i, Normalize::sample, &stored));
    EXPECT_TRUE(stored.same_bits(sample));
  }
}

TEST(ConvertHdf5Cli, RewritesH5pyFilesAndCopiesEverythingElse) {
  if (!test::have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py (scripts/setup.sh installs python3-h5py)";
  write_inputs();
  for (const std::string name : {"f32", "f16", "padded"}) {
    SCOPED_TRACE(name);
    const std::string in = path(name + ".h5"), out = path(name + "_fast.h5");
    const Result r = run("convert " + in + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(test::count_lines(r.out), 1) << r.out;
    EXPECT_NE(r.out.find("shape [5, 24, 20]"), std::string::npos) << r.out;
    EXPECT_EQ(r.err, "") << "(padding holding NaN is no bad gather)";
    EXPECT_FALSE(file_exists(out + ".tmp"));
    expect_same_gathers(in, out);
    EXPECT_EQ(compare_with_h5py(in, out), 0);
  }
  EXPECT_NE(run("convert " + path("f32.h5") + " --out " + path("x.h5")).out.find("labels uint8 (from float32)"),
            std::string::npos);
}

// Gathers of 80 KiB written by h5py (contiguous, wherever the library puts them): the converted
// file's chunks of 64 KiB or more start on 4 KiB, so direct reads land in the reader's slots, and
// `seisseg info` says so; the labels' 20 KiB chunks are left where they fall.
TEST(ConvertHdf5Cli, ChunksOf64KiBOrMoreStartOn4KiB) {
  if (!test::have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py";
  std::system(("mkdir -p " + dir()).c_str());
  ASSERT_EQ(test::run_h5py_script(path("wide.py"), R"(
rng = np.random.default_rng(12)
with h5py.File(sys.argv[1], 'w') as f:
    f.attrs['dt'] = 0.002
    f.create_dataset('data', data=rng.standard_normal((3, 128, 160)).astype(np.float32))
    f.create_dataset('label', data=(rng.random((3, 128, 160)) < 0.2).astype(np.uint8))
)",
                                  path("wide.h5")),
            0);
  const Result r = run("convert " + path("wide.h5") + " --out " + path("wide_fast.h5"));
  ASSERT_EQ(r.code, 0) << r.err;
  const H5SampleFile f(path("wide_fast.h5"));
  EXPECT_TRUE(f.info().data_direct && f.info().data_aligned);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(f.direct_extents(i)[0].offset % 4096, 0) << "gather " << i;
  const Result info = run("info " + path("wide_fast.h5") + " --json");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("\"aligned_4k\":true"), std::string::npos) << info.out;
  const Result text = run("info " + path("wide_fast.h5"));
  EXPECT_NE(text.out.find("read with pread, on 4 KiB"), std::string::npos) << text.out;
}

// The input's stale statistics are refused by the reader, which computes its own; the converted
// file's are the reader's own: the same run either way.
TEST(ConvertHdf5Cli, TheConvertedFileTrainsToTheSameWeights) {
  if (!test::have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py";
  write_inputs();
  const std::string in = path("f32.h5"), out = path("f32_train.h5");
  ASSERT_EQ(run("convert " + in + " --out " + out).code, 0);
  const std::string flags =
      " --levels 2 --base 4 --batch 2 --steps 4 --seed 3 --device cpu --normalize trace --flip --val-every 0";
  const Result a = run("train --data " + in + flags + " --out " + path("run_in"));
  const Result b = run("train --data " + out + flags + " --out " + path("run_out"));
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(a.err.find("statistics"), std::string::npos) << "the input's stale statistics are refused:\n" << a.err;
  EXPECT_EQ(b.err.find("statistics"), std::string::npos) << b.err;
  const std::string wa = test::slurp(path("run_in/weights.safetensors"));
  EXPECT_FALSE(wa.empty());
  EXPECT_EQ(wa, test::slurp(path("run_out/weights.safetensors")));
}

TEST(ConvertHdf5Cli, OutMayNameTheInputWhichIsReplacedWhenComplete) {
  if (!test::have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py";
  write_inputs();
  const std::string original = path("f16.h5"), in_place = path("in_place.h5");
  ASSERT_EQ(std::system(("cp " + original + " " + in_place).c_str()), 0);
  const Result r = run("convert " + in_place + " --out " + in_place);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(file_exists(in_place + ".tmp"));
  expect_same_gathers(original, in_place);
}

// A conversion in place that fails (a damaged compressed chunk halfway) leaves the input as it was.
TEST(ConvertHdf5Cli, AFailedConversionInPlaceLeavesTheInput) {
  if (!test::have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py";
  write_inputs();
  const std::string in = path("damaged.h5");
  const std::string before = test::slurp(in);
  const Result r = run("convert " + in + " --out " + in);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(in), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sample 2"), std::string::npos) << r.err;
  EXPECT_TRUE(test::slurp(in) == before) << "the input changed";
  EXPECT_FALSE(file_exists(in + ".tmp"));
}

TEST(ConvertHdf5Cli, GathersHoldingNaNAreKeptAndNamed) {
  if (!test::have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py";
  write_inputs();
  const std::string in = path("nan.h5"), out = path("nan_fast.h5");
  const Result r = run("convert " + in + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  // One warning for the gather, one for the attribute that points into the input.
  EXPECT_EQ(test::count_lines(r.err), 2) << r.err;
  EXPECT_NE(r.err.find("1 gather(s) hold NaN or Inf (sample 3)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not copied: root attribute 'ref'"), std::string::npos) << r.err;
  const H5SampleFile f(out);
  std::vector<float> d(480);
  f.read(3, d.data(), nullptr);
  EXPECT_TRUE(std::isnan(d[5 * 20 + 6]));
}

TEST(ConvertHdf5Cli, BadInputsAndFlagsExitWithOneLineAndLeaveNothing) {
  if (!test::have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py";
  write_inputs();
  const std::string out = path("bad_out.h5");
  struct Case {
    std::string args;
    int code;
    std::string says;
  };
  const std::string truncated = path("truncated.h5");
  {
    const std::string whole = test::slurp(path("f32.h5"));
    std::FILE* f = std::fopen(truncated.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(whole.data(), 1, whole.size() / 2, f);
    std::fclose(f);
  }
  const std::vector<Case> cases = {
      {"convert " + path("f32.h5") + " --out " + out + " --endian big", 2, "--endian: for SEG-Y input"},
      {"convert " + path("f32.h5") + " --out " + out + " --gather-size 4", 2, "--gather-size: for SEG-Y input"},
      {"convert " + truncated + " --out " + out, 1, "truncated"},
      {"convert " + path("record.h5") + " --out " + out, 1, "continuous record"},
      {"convert " + path("nodata.h5") + " --out " + out, 1, "nodata.h5"},
      {"convert " + path("f32.h5") + " --out " + path("no/such/dir.h5"), 1, "no/such/dir.h5"},
      {"convert " + path("named.tmp") + " --out " + path("named"), 2, "its temporary file, is the input"},
  };
  ASSERT_EQ(std::system(("cp " + path("f32.h5") + " " + path("named.tmp")).c_str()), 0);
  const std::string named = test::slurp(path("named.tmp"));
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    const Result r = run(c.args);
    EXPECT_EQ(r.code, c.code) << r.err;
    EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_FALSE(file_exists(out));
    EXPECT_FALSE(file_exists(out + ".tmp"));
  }
  EXPECT_TRUE(test::slurp(path("named.tmp")) == named) << "an input named like the temporary file was touched";
  EXPECT_FALSE(file_exists(path("named")));
}

}  // namespace
}  // namespace seis
