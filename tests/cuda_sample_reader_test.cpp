// SampleReader on cuda:0 (pinned slots, copy stream, events) against the CPU reader, bit for bit;
// direct reads straight into the pinned slots.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/device_runtime.h"
#include "engine/rng.h"
#include "io/hdf5_dataset.h"
#include "io/sample_reader.h"
#include "io/sample_set.h"
#include "test_util.h"

namespace seis {
namespace {

std::string write_set(int64_t n, int64_t h, int64_t w) {
  const std::string path = ::testing::TempDir() + "cuda_sample_reader_" + std::to_string(::getpid()) + ".h5";
  H5SampleWriter::Options o;
  o.n = n;
  o.height = h;
  o.width = w;
  H5SampleWriter wr(path, o);
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<float> d = test::random_vector(h * w, 100 + static_cast<uint64_t>(i));
    std::vector<uint8_t> l(d.size());
    for (size_t p = 0; p < d.size(); ++p) l[p] = d[p] > 0.5f ? 1 : 0;
    wr.write(i, d.data(), l.data());
  }
  wr.commit();
  return path;
}

void run_against_cpu(const SampleSet& set, SampleReaderOptions o, int64_t batches) {
  o.device = Device::cpu();
  SampleReader cpu(set, o);
  o.device = Device::cuda(0);
  SampleReader gpu(set, o);
  for (int64_t i = 0; i < batches; ++i) {
    const ReaderBatch c = cpu.next(), g = gpu.next();
    ASSERT_EQ(g.data.device(), Device::cuda(0));
    ASSERT_EQ(g.label.device(), Device::cuda(0));
    ASSERT_EQ(g.samples, c.samples) << "batch " << i;
    const Tensor gd = g.data.to(Device::cpu()), gl = g.label.to(Device::cpu());
    ASSERT_EQ(gd.shape(), c.data.shape());
    ASSERT_EQ(gd.dtype(), c.data.dtype());
    ASSERT_EQ(std::memcmp(gd.raw(), c.data.raw(), static_cast<size_t>(c.data.nbytes())), 0) << "data, batch " << i;
    ASSERT_EQ(std::memcmp(gl.raw(), c.label.raw(), static_cast<size_t>(c.label.nbytes())), 0) << "labels, batch " << i;
  }
}

TEST(CudaSampleReader, BatchesEqualTheCpuReaderBitForBit) {
  SEIS_NEED_GPU();
  const std::string path = write_set(24, 64, 48);
  {
    SampleSet set({path});
    SampleReaderOptions o;
    o.batch = 4;
    o.seed = 3;
    o.prefetch = 2;
    o.threads = 3;
    o.normalize = Normalize::trace;
    o.augment.flip_receivers = true;
    o.augment.max_shift = 5;
    o.augment.crop_height = 32;
    o.augment.crop_width = 32;
    run_against_cpu(set, o, 2 * 6);  // 2 epochs
    o.dtype = DType::bf16;           // (the bf16 batches of a bf16 run: half the upload)
    run_against_cpu(set, o, 2 * 6);
    o.dtype = DType::f32;
    o.augment = AugmentOptions();
    o.normalize = Normalize::none;
    run_against_cpu(set, o, 2 * 6);
  }
  std::remove(path.c_str());
}

// Compute work queued between batches must not race the copies: consume each batch on the compute
// stream (a device copy) before the next upload, with a slot ring smaller than the batches.
TEST(CudaSampleReader, SlotsAreReusedOnlyAfterTheirUpload) {
  SEIS_NEED_GPU();
  const std::string path = write_set(16, 256, 256);
  {
    SampleSet set({path});
    SampleReaderOptions o;
    o.batch = 2;
    o.prefetch = 2;
    o.threads = 3;
    o.normalize = Normalize::none;
    o.device = Device::cpu();
    SampleReader cpu(set, o);
    o.device = Device::cuda(0);
    SampleReader gpu(set, o);
    std::vector<Tensor> kept;
    for (int i = 0; i < 16; ++i) {
      const ReaderBatch g = gpu.next();
      Tensor copy = Tensor::empty(g.data.shape(), DType::f32, Device::cuda(0));
      copy.copy_from(g.data);  // on the compute stream, ordered after the upload
      kept.push_back(copy);
    }
    for (int i = 0; i < 16; ++i) {
      const ReaderBatch c = cpu.next();
      const Tensor h = kept[static_cast<size_t>(i)].to(Device::cpu());
      ASSERT_EQ(std::memcmp(h.raw(), c.data.raw(), static_cast<size_t>(c.data.nbytes())), 0) << "batch " << i;
    }
  }
  std::remove(path.c_str());
}

// Direct reads (O_DIRECT) land straight in the pinned slots: cudaHostAlloc memory is page-aligned
// and takes a DMA from the disk; the batches are the CPU reader's (page-cache reads, another set
// of the same file), and the bytes read in place are counted.
TEST(CudaSampleReader, DirectReadsLandStraightInThePinnedSlots) {
  SEIS_NEED_GPU();
  const std::string path = write_set(8, 256, 256);  // 256 KiB gathers: chunks aligned by the writer
  const int probe = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  if (probe < 0) {
    std::remove(path.c_str());
    GTEST_SKIP() << ::testing::TempDir() << " refuses O_DIRECT";
  }
  ::close(probe);
  {
    SampleSet page_set({path}), direct_set({path});
    SampleReaderOptions o;
    o.batch = 2;
    o.prefetch = 2;
    o.threads = 2;
    o.normalize = Normalize::trace;
    o.device = Device::cpu();
    SampleReader cpu(page_set, o);
    o.device = Device::cuda(0);
    o.direct_io = true;
    SampleReader gpu(direct_set, o);
    for (int64_t i = 0; i < 2 * gpu.batches_per_epoch(); ++i) {
      const ReaderBatch c = cpu.next(), g = gpu.next();
      ASSERT_EQ(g.samples, c.samples) << "batch " << i;
      const Tensor gd = g.data.to(Device::cpu()), gl = g.label.to(Device::cpu());
      ASSERT_EQ(std::memcmp(gd.raw(), c.data.raw(), static_cast<size_t>(c.data.nbytes())), 0) << "data, batch " << i;
      ASSERT_EQ(std::memcmp(gl.raw(), c.label.raw(), static_cast<size_t>(c.label.nbytes())), 0)
          << "labels, batch " << i;
    }
    EXPECT_TRUE(direct_set.file(0).direct_reads());
    // Every gather and its labels of the two epochs, and at most the prefetched batches beyond.
    const int64_t per_sample = 256 * 256 * 5, read = direct_set.file(0).direct_bytes_in_place();
    EXPECT_GE(read, 2 * 8 * per_sample) << "straight into the pinned slots";
    EXPECT_LE(read, (2 * 8 + o.prefetch * o.batch) * per_sample);
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace seis
