// bench_comm: allreduce bus bandwidth, the share of the gradient allreduce hidden behind backward
// in a real training step, and a projection of the scaling efficiency to 8, 64 and 512 GPUs.
// One JSON line per measurement. Run it under the launcher, as training runs:
//
//   mpirun -np 2 bench_comm --device cpu --levels 3 --base 8 --size 128 --batch 2
//   mpirun -np 8 bench_comm --device cuda --levels 7 --size 4096 --batch 1     (NCCL)
//   bench_comm --device cuda ...   (no launcher: NCCL with one rank; the bandwidths are copies)
//
// busbw = 2(n-1)/n * bytes / time (nccl-tests' definition, ANCHORS.md "Data parallelism").
// Overlap: T0 = step without communication, T1 = step with bucketed allreduces, Tar = the same
// bucket allreduces alone; hidden = 1 - (T1 - T0) / Tar, clamped to [0, 1].
// Projection (printed with its inputs): gradient bytes G in b buckets, N GPUs, g per node;
//   busbw(N) = nvlink if N <= g, else min(nvlink, ib per node);
//   t_ar(N) = 2(N-1)/N * G / busbw(N) + b * 2(N-1) * latency;
//   exposed(N) = max((1 - hidden) * t_ar(N), t_ar(N) - bwd_share * T_step);
//   efficiency(N) = T_step / (T_step + exposed(N)).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "bench_util.h"
#include "engine/communicator.h"
#include "engine/device_runtime.h"
#include "engine/grad_buckets.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "engine/rng.h"
#include "models/unet.h"

using namespace seis;

namespace {

using bench::now_s;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_comm: allreduce bandwidth, overlap with backward, scaling projection"};
  std::string device_s = "cpu";
  int64_t min_bytes = 1024, max_bytes = int64_t{256} << 20, size = 128, batch = 2;
  int levels = 3, base = 8, steps = 5, warmup = 2, gpus_per_node = 8;
  double bucket_mb = 25, nvlink_gbs = 370, ib_gbs = 100, latency_us = 5, bwd_share = 0.67, step_s = 0, grad_mib = 0;
  int proj_levels = 7, proj_base = 8;
  double hidden_override = -1, proj_bucket_mb = 25;
  app.add_option("--device", device_s, "cpu (MPI) or cuda (NCCL)")->capture_default_str();
  app.add_option("--min-bytes", min_bytes)->capture_default_str();
  app.add_option("--max-bytes", max_bytes)->capture_default_str();
  app.add_option("--levels", levels, "UNet of the timed step")->capture_default_str();
  app.add_option("--base", base)->capture_default_str();
  app.add_option("--size", size, "gather height and width")->capture_default_str();
  app.add_option("--batch", batch, "samples per rank")->capture_default_str();
  app.add_option("--steps", steps, "timed steps")->capture_default_str();
  app.add_option("--warmup", warmup)->capture_default_str();
  app.add_option("--bucket-mb", bucket_mb)->capture_default_str();
  app.add_option("--nvlink-gbs", nvlink_gbs, "allreduce bus bandwidth within a node, GB/s")->capture_default_str();
  app.add_option("--ib-gbs", ib_gbs, "network bandwidth per node, GB/s (4x200 Gb/s = 100)")->capture_default_str();
  app.add_option("--gpus-per-node", gpus_per_node)->capture_default_str();
  app.add_option("--latency-us", latency_us, "per ring hop and bucket")->capture_default_str();
  app.add_option("--bwd-share", bwd_share, "backward's share of the step (the overlap window)")->capture_default_str();
  app.add_option("--step-s", step_s, "single-GPU step time to project from (0: the step measured here)");
  app.add_option("--grad-mib", grad_mib, "gradient MiB to project (0: the --proj-levels/--proj-base UNet)");
  app.add_option("--hidden-fraction", hidden_override, "overlap to project with (-1: the one measured here)")
      ->capture_default_str();
  app.add_option("--proj-levels", proj_levels)->capture_default_str();
  app.add_option("--proj-bucket-mb", proj_bucket_mb, "bucket size of the projected run")->capture_default_str();
  app.add_option("--proj-base", proj_base)->capture_default_str();
  if (!parse_cli(app, argc, argv)) return 0;

  const Device device = parse_device(device_s);
  if (device.is_cuda()) cuda_set_device(device.index);
  std::unique_ptr<Communicator> comm = make_communicator(device, /*nccl_for_single=*/true);
  const int w = comm->world();
  const bool root = comm->rank() == 0;
  auto sync = [&] {
    if (device.is_cuda()) cuda_synchronize(device.index);
  };
  auto print = [&](const nlohmann::ordered_json& j) {
    if (root) std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  };

  // 1. Allreduce bandwidth over sizes.
  for (int64_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
    const int64_t n = bytes / 4;
    Tensor buf = Tensor::zeros({n}, DType::f32, device);
    const int iters = static_cast<int>(std::clamp<int64_t>((int64_t{64} << 20) / bytes, 3, 200));
    for (int i = 0; i < 2; ++i) comm->wait(comm->allreduce_sum_async(buf.data<float>(), n, device));
    sync();
    comm->barrier();
    const double t0 = now_s();
    for (int i = 0; i < iters; ++i) comm->wait(comm->allreduce_sum_async(buf.data<float>(), n, device));
    sync();
    double t = (now_s() - t0) / iters;
    comm->allreduce_sum_host(&t, 1);
    t /= w;  // the mean over the ranks
    const double busbw = w > 1 ? 2.0 * (w - 1) / w * static_cast<double>(bytes) / t : 0.0;
    print({{"bench", "allreduce"},
           {"backend", comm->backend()},
           {"ranks", w},
           {"bytes", bytes},
           {"time_us", t * 1e6},
           {"algbw_gbs", static_cast<double>(bytes) / t / 1e9},
           {"busbw_gbs", busbw / 1e9}});
  }

  // 2. A training step without and with bucketed allreduces, and the allreduces alone.
  UNetConfig mc;
  mc.levels = levels;
  mc.base = base;
  UNet model(mc, 1, device);
  OptimizerConfig oc;
  Optimizer opt(oc, model.param_vars());
  Rng rng(7 + static_cast<uint64_t>(comm->rank()));
  Tensor xh = Tensor::empty({batch, size, size, 1});
  Tensor yh = Tensor::empty({batch, size, size}, DType::u8);
  for (int64_t i = 0; i < xh.numel(); ++i) xh.data<float>()[i] = rng.normal();
  for (int64_t i = 0; i < yh.numel(); ++i) yh.data<uint8_t>()[i] = rng.uniform() > 0.8 ? 1 : 0;
  const Tensor x = xh.to(device), y = yh.to(device);
  const int64_t bucket_bytes = static_cast<int64_t>(bucket_mb * (1 << 20));
  auto time_steps = [&](GradBucketer* buckets) {
    std::vector<double> ts;
    for (int s = 0; s < warmup + steps; ++s) {
      comm->barrier();
      sync();
      const double t0 = now_s();
      Tape tape;
      Var loss = bce_with_logits(&tape, model.forward(&tape, make_var(x)), y, 1.0f, y.numel() * w);
      tape.backward(loss);
      if (buckets != nullptr) buckets->finish();
      opt.step(1e-6f);
      sync();
      if (s >= warmup) ts.push_back(now_s() - t0);
    }
    double t = median(ts);
    comm->allreduce_sum_host(&t, 1);
    return t / w;
  };
  const double t_nocomm = time_steps(nullptr);
  double t_comm = 0, t_ar = 0;
  int64_t nbuckets = 0, grad_bytes = 0;
  {
    GradBucketer buckets(*comm, model.param_vars(), bucket_bytes);
    nbuckets = buckets.num_buckets();
    grad_bytes = buckets.total_floats() * 4;
    t_comm = time_steps(&buckets);
  }
  {
    // The same bucket sizes, reduced alone, back to back as in a step.
    std::vector<Tensor> bufs;
    const std::vector<int64_t> sizes = GradBucketer(*comm, model.param_vars(), bucket_bytes).bucket_floats();
    for (int64_t n : sizes) bufs.push_back(Tensor::zeros({n}, DType::f32, device));
    std::vector<double> ts;
    for (int s = 0; s < warmup + steps; ++s) {
      comm->barrier();
      sync();
      const double t0 = now_s();
      std::vector<int64_t> hs;
      for (Tensor& b : bufs) hs.push_back(comm->allreduce_sum_async(b.data<float>(), b.numel(), device));
      for (int64_t h : hs) comm->wait(h);
      sync();
      if (s >= warmup) ts.push_back(now_s() - t0);
    }
    t_ar = median(ts);
    comm->allreduce_sum_host(&t_ar, 1);
    t_ar /= w;
  }
  const double exposed = std::max(0.0, t_comm - t_nocomm);
  const double hidden = t_ar > 0 && w > 1 ? std::clamp(1.0 - exposed / t_ar, 0.0, 1.0) : 0.0;
  print({{"bench", "overlap"},
         {"backend", comm->backend()},
         {"ranks", w},
         {"device", device.str()},
         {"levels", levels},
         {"base", base},
         {"size", size},
         {"batch_per_rank", batch},
         {"buckets", nbuckets},
         {"grad_bytes", grad_bytes},
         {"step_no_comm_s", t_nocomm},
         {"step_with_comm_s", t_comm},
         {"allreduce_alone_s", t_ar},
         {"exposed_s", exposed},
         {"hidden_fraction", hidden}});

  // 3. The projection.
  if (grad_mib <= 0) {
    UNetConfig pc;
    pc.levels = proj_levels;
    pc.base = proj_base;
    grad_mib = static_cast<double>(UNet(pc, 1, Device::cpu()).num_params()) * 4 / (1 << 20);
  }
  const double g_bytes = grad_mib * (1 << 20);
  const double t_step = step_s > 0 ? step_s : t_nocomm;
  const double hidden_p = hidden_override >= 0 ? std::min(1.0, hidden_override) : hidden;
  const double buckets_p = std::max(1.0, std::ceil(g_bytes / (proj_bucket_mb * (1 << 20))));
  for (int n : {8, 64, 512}) {
    const double bw = (n <= gpus_per_node ? nvlink_gbs : std::min(nvlink_gbs, ib_gbs)) * 1e9;
    const double t = 2.0 * (n - 1) / n * g_bytes / bw + buckets_p * 2.0 * (n - 1) * latency_us * 1e-6;
    const double exp_n = std::max((1.0 - hidden_p) * t, t - bwd_share * t_step);
    print({{"bench", "projection"},
           {"gpus", n},
           {"gpus_per_node", gpus_per_node},
           {"grad_mib", grad_mib},
           {"buckets", buckets_p},
           {"busbw_gbs", bw / 1e9},
           {"latency_us", latency_us},
           {"step_s", t_step},
           {"step_source", step_s > 0 ? "--step-s" : "measured here"},
           {"hidden_fraction", hidden},
           {"bwd_share", bwd_share},
           {"allreduce_s", t},
           {"exposed_s", exp_n},
           {"efficiency", t_step / (t_step + exp_n)}});
  }
  return 0;
}
