// bench_step: one full training step (forward, BCE, backward, Adam) of the UNet, in our engine.
// Prints one JSON line per measurement. With --torch it also runs benchmarks/torch_unet.py on the
// same device and shape in the same run and prints the ratio of the step times.
//
//   bench_step --levels 5 --base 8 --size 256 --batch 4 --device cpu --torch
//   bench_step --levels 7 --size 4096 --batch 1 --device cuda --precision bf16 --torch --torch-modes amp_bf16
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/graph_step.h"
#include "apps/memory_plan.h"
#include "bench_util.h"
#include "engine/device_runtime.h"
#include "engine/memory.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "engine/rng.h"
#include "models/unet.h"

using namespace seis;

namespace {

using bench::now_s;
using bench::run_capture;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_step: time a UNet training step; compare with PyTorch (--torch)"};
  int levels = 5, base = 8, steps = 10, warmup = 2;
  int64_t size = 256, batch = 4;
  std::string device_s = "cpu", precision = "fp32", python = "python3", torch_modes = "fp32", conv_backend = "own";
  bool torch_peer = false, max_batch = false, cuda_graph = false, cuda_arena = false;
  app.add_option("--levels", levels)->capture_default_str();
  app.add_option("--base", base)->capture_default_str();
  app.add_option("--size", size)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--steps", steps, "timed steps")->capture_default_str();
  app.add_option("--warmup", warmup)->capture_default_str();
  app.add_option("--device", device_s)->capture_default_str();
  app.add_option("--precision", precision, "fp32, tf32 or bf16 (CUDA)")->capture_default_str();
  app.add_option("--conv-backend", conv_backend, "own or cudnn (CUDA)")->capture_default_str();
  app.add_flag("--torch", torch_peer, "also time benchmarks/torch_unet.py");
  app.add_flag("--cuda-graph", cuda_graph, "run the timed steps as one CUDA graph each (apps/graph_step.h)");
  app.add_flag("--cuda-arena", cuda_arena,
               "run the timed steps eagerly with their temporaries in the graph's arena, without a capture (as "
               "SEIS_CUDA_ARENA=1 in train)");
  app.add_flag("--max-batch", max_batch,
               "find the largest batch whose step fits (cap the memory with SEIS_CUDA_MEMORY_LIMIT_GIB)");
  app.add_option("--python", python, "the Python with torch")->capture_default_str();
  app.add_option("--torch-modes", torch_modes, "modes for torch_unet.py")->capture_default_str();
  try {
    if (!parse_cli(app, argc, argv)) return 0;
    const Device device = parse_device(device_s);
    if (device.is_cuda()) cuda_set_device(device.index);
    ExecConfig exec;
    exec.math = seis::parse_precision(precision);
    exec.conv_backend = seis::parse_conv_backend(conv_backend);

    UNetConfig cfg;
    cfg.levels = levels;
    cfg.base = base;
    UNet model(cfg, 0, device);
    model.set_exec(exec);
    OptimizerConfig oc;
    Optimizer opt(oc, model.param_vars());
    Rng rng(1);
    auto make_batch = [&](int64_t b, Tensor* x, Tensor* y) {
      std::vector<float> xv(static_cast<size_t>(b * size * size));
      for (auto& v : xv) v = static_cast<float>(rng.normal());
      *x = Tensor::from_vector({b, size, size, 1}, xv).to(device);
      Tensor yh = Tensor::zeros({b, size, size}, DType::u8);
      for (int64_t i = 0; i < yh.numel(); ++i) yh.data<uint8_t>()[i] = rng.uniform() < 0.1 ? 1 : 0;
      *y = yh.to(device);
    };
    if (max_batch) {
      // One step per candidate batch: doubling until a step runs out of memory, then bisection.
      auto fits = [&](int64_t b) {
        try {
          Tensor xb, yb;
          make_batch(b, &xb, &yb);
          Tape tape;
          Var loss = bce_with_logits(&tape, model.forward(&tape, make_var(xb)), yb, 1.0f);
          tape.backward(loss);
          opt.step(oc.lr);
          scalar_value(loss->value);
          return true;
        } catch (const Error& e) {
          if (std::string(e.what()).find("out of memory") == std::string::npos) throw;
          return false;
        }
      };
      int64_t good = 0, bad = 1;
      while (fits(bad)) {
        good = bad;
        bad *= 2;
      }
      while (bad - good > 1) {
        const int64_t mid = (good + bad) / 2;
        (fits(mid) ? good : bad) = mid;
      }
      const char* lim = std::getenv("SEIS_CUDA_MEMORY_LIMIT_GIB");
      // The memory planner's answer for the same budget (seisseg plan), beside the measured one.
      PlanRequest pr;
      pr.model = cfg;
      pr.height = pr.width = size;
      pr.math = exec.math;
      pr.device = device;
      const double limit_gib = lim != nullptr ? std::atof(lim) : 0.0;
      const int64_t planned =
          limit_gib > 0 && exec.conv_backend == ConvBackend::own
              ? MemoryPlanner(pr).max_batch(static_cast<int64_t>(limit_gib * double(int64_t{1} << 30)))
              : -1;
      nlohmann::ordered_json rec = {{"bench", "max_batch"},
                                    {"device", device.is_cpu() ? "cpu" : cuda_device_description(device.index)},
                                    {"memory_limit_gib", lim != nullptr ? std::atof(lim) : 0.0},
                                    {"precision", precision},
                                    {"levels", levels},
                                    {"base", base},
                                    {"size", size},
                                    {"max_batch", good},
                                    {"planned_max_batch", planned}};
      std::printf("%s\n", rec.dump().c_str());
      return 0;
    }
    Tensor x, y;
    make_batch(batch, &x, &y);

    auto eager_step = [&]() {
      Tape tape;
      Var loss = bce_with_logits(&tape, model.forward(&tape, make_var(x)), y, 1.0f);
      tape.backward(loss);
      opt.step(oc.lr);
      return static_cast<double>(scalar_value(loss->value));  // waits for the step to finish
    };
    std::unique_ptr<GraphStep> graph;
    SEIS_CHECK(!(cuda_graph && cuda_arena), "--cuda-graph and --cuda-arena are two modes: give one");
    if (cuda_graph || cuda_arena) {
      SEIS_CHECK(device.is_cuda(), "--cuda-graph and --cuda-arena need --device cuda");
      graph = std::make_unique<GraphStep>(model, opt, 1.0f, /*capture=*/cuda_graph);
    }
    auto step = [&]() {
      if (!graph) return eager_step();
      Tensor xb = x, yb = y;  // (run releases its handles of the batch)
      const GraphStep::Result r = graph->run(&xb, &yb, oc.lr);
      if (!r.gave_up.empty()) throw Error("the step cannot run as a CUDA graph or from its arena: " + r.gave_up);
      return r.loss;
    };
    // Warm-up without the graph (cuDNN's choices, the allocator's blocks), then the graph's recorded
    // step and its capture.
    for (int i = 0; i < warmup; ++i) eager_step();
    if (graph) {
      step();
      step();
    }
    reset_memory_peak(device);
    const int64_t flushes_before = device.is_cuda() ? cuda_cache_flushes(device.index) : 0;
    std::vector<double> times;
    for (int i = 0; i < steps; ++i) {
      const double t0 = now_s();
      step();
      times.push_back(now_s() - t0);
    }
    std::sort(times.begin(), times.end());
    const double ms = times[times.size() / 2] * 1e3;
    const std::string mode = precision + (exec.conv_backend == ConvBackend::cudnn ? "_cudnn" : "") +
                             (cuda_graph ? "_graph" : "") + (cuda_arena ? "_arena" : "");
    nlohmann::ordered_json rec = {{"bench", "step"},
                                  {"impl", "seisseg"},
                                  {"mode", mode},
                                  {"device", device.is_cpu() ? "cpu" : cuda_device_description(device.index)},
                                  {"levels", levels},
                                  {"base", base},
                                  {"size", size},
                                  {"batch", batch},
                                  {"params", model.num_params()},
                                  {"ms_per_step", ms},
                                  {"samples_per_s", static_cast<double>(batch) / (ms / 1e3)}};
    rec["peak_bytes"] = memory_peak(device);
    if (device.is_cuda()) {
      // The allocator's blocks (cached included), and how often it emptied its cache to retry a
      // cudaMalloc during the timed steps (each a device synchronisation).
      rec["reserved_bytes"] = memory_reserved(device);
      rec["cache_flushes"] = cuda_cache_flushes(device.index) - flushes_before;
    }
    rec["activation_dtype"] = dtype_name(activation_dtype(exec, device));
    if (exec.conv_backend == ConvBackend::own) {
      // What seisseg plan predicts for this step (a fresh process's peak; the measured one is the
      // steady state after warm-up, on the caching allocator).
      PlanRequest pr;
      pr.model = cfg;
      pr.height = pr.width = size;
      pr.math = exec.math;
      pr.device = device;
      pr.cuda_graph = cuda_graph;
      pr.step_arena = cuda_arena;
      MemoryPlanner planner(pr);
      rec["planned_peak_bytes"] = planner.step_peak_bytes(batch);
      if (device.is_cuda()) rec["planned_reserved_bytes"] = planner.reserved_bytes();
    }
    std::printf("%s\n", rec.dump().c_str());
    std::fflush(stdout);

    if (torch_peer) {
      // The repository root may differ from the build's (the GPU machine): prefer ./benchmarks.
      std::string script = "benchmarks/torch_unet.py";
      if (FILE* f = std::fopen(script.c_str(), "r")) {
        std::fclose(f);
      } else {
        script = std::string(SEIS_SOURCE_DIR) + "/" + script;
      }
      char args[512];
      std::snprintf(args, sizeof args, " --levels %d --base %d --size %lld --batch %lld --steps %d --warmup %d", levels,
                    base, static_cast<long long>(size), static_cast<long long>(batch), steps, warmup);
      const std::string torch_dev = device.is_cpu() ? "cpu" : "cuda:" + std::to_string(device.index);
      const std::string out =
          run_capture(python + " " + script + args + " --device " + torch_dev + " --modes " + torch_modes + " 2>&1");
      size_t start = 0;
      while (start < out.size()) {
        const size_t end = out.find('\n', start);
        const std::string line = out.substr(start, end == std::string::npos ? std::string::npos : end - start);
        start = end == std::string::npos ? out.size() : end + 1;
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
          if (!line.empty()) std::fprintf(stderr, "torch_unet.py: %s\n", line.c_str());
          continue;
        }
        std::printf("%s\n", j.dump().c_str());
        if (j.contains("ms_per_step")) {
          nlohmann::ordered_json ratio = {
              {"bench", "step_ratio"},          {"seisseg_mode", rec["mode"]},
              {"pytorch_mode", j["mode"]},      {"seisseg_ms", ms},
              {"pytorch_ms", j["ms_per_step"]}, {"ratio_seisseg_over_pytorch", ms / j["ms_per_step"].get<double>()}};
          std::printf("%s\n", ratio.dump().c_str());
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
