// seisseg plan: the memory of a training step, from a run of the step on a shape-only device
// (apps/memory_plan.h): bytes per sample, the peak for a batch, and the largest batch that fits.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/graph_step.h"
#include "apps/memory_plan.h"
#include "engine/device_runtime.h"
#include "engine/ops.h"
#include "engine/optimizer.h"

namespace seis {

namespace {

// The device modelled: "cpu", "cuda" or "cuda:N" need no GPU here; "auto" is the GPU if there is one.
Device plan_device(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  if (s == "auto") return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
  if (s == "cuda") return Device::cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 8 &&
      s.find_first_not_of("0123456789", 5) == std::string::npos) {
    return Device::cuda(std::stoi(s.substr(5)));
  }
  throw UsageError("--device: '" + s + "' is not cpu, cuda, cuda:N or auto");
}

std::string gb(int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

}  // namespace

int cmd_plan(int argc, char** argv) {
  int levels = 7, base = 8, world = 1, prefetch = 3;
  int64_t height = 0, width = 0, batch = 1;
  double memory_gib = 0;
  std::string precision = "fp32", device_s = "auto", optimizer = "adam";
  bool as_json = false, direct_io = false;
  CLI::App app{"seisseg plan: memory of a training step (bytes per sample, peak, largest batch that fits)",
               "seisseg plan"};
  app.add_option("--levels", levels, "UNet levels")->capture_default_str()->check(CLI::Range(1, 12));
  app.add_option("--base", base, "channels of the first level")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--height", height, "sample height (time samples)")->required()->check(CLI::Range(1, 1 << 20));
  app.add_option("--width", width, "sample width (receivers)")->required()->check(CLI::Range(1, 1 << 20));
  app.add_option("--batch", batch, "samples per step (per rank)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--precision", precision, kPrecisionHelp)
      ->capture_default_str()
      ->check(CLI::IsMember(precision_names()));
  app.add_option("--device", device_s, "the device planned for: cpu, cuda, cuda:N (no GPU needed here) or auto")
      ->capture_default_str();
  app.add_option("--memory-gib", memory_gib, "memory budget in GiB (default: the device's free memory)")
      ->check(CLI::Range(0.001, 1e6));
  app.add_option("--optimizer", optimizer, "adam, adamw or sgd")
      ->capture_default_str()
      ->check(CLI::IsMember(optimizer_names()));
  app.add_option("--world", world, "ranks of a data-parallel run (gradient buckets when > 1)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--prefetch", prefetch, "reader slots (pinned host memory, reported apart)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_flag("--direct-io", direct_io,
               "the reader reads with O_DIRECT (train --direct-io): count each worker's I/O buffers");
  app.add_flag("--json", as_json, "one JSON object instead of text");
  if (!parse_cli(app, argc, argv)) return 0;

  PlanRequest req;
  req.model.levels = levels;
  req.model.base = base;
  req.height = height;
  req.width = width;
  req.math = parse_precision(precision);
  req.device = plan_device(device_s);
  req.optimizer = parse_optimizer(optimizer);
  req.world = world;
  req.prefetch = prefetch;
  req.direct_reads = direct_io;
  req.cuda_graph = cuda_graph_switch();
  req.step_arena = cuda_arena_switch();
  MemoryPlanner planner(req);
  const int64_t peak1 = planner.step_peak_bytes(1), peak2 = planner.step_peak_bytes(2);
  const int64_t peak = planner.step_peak_bytes(batch);
  // SEIS_CUDA_GRAPH=1: the arena of the graph's step at this batch (0 when no graph runs).
  const int64_t arena = planner.graph_arena_bytes(), arena_live = planner.graph_live_peak();
  const int64_t reserved = planner.reserved_bytes();
  const int64_t per_sample = peak2 - peak1;
  // The budget: as given, else what the device has (a GPU plan made without that GPU has none).
  int64_t budget = -1;
  if (memory_gib > 0) {
    budget = static_cast<int64_t>(memory_gib * double(int64_t{1} << 30));
  } else if (req.device.is_cpu() || req.device.index < cuda_device_count()) {
    budget = device_memory_budget(req.device);
  }
  // On the CPU the reader's pinned slots live in the same memory as the step.
  const int64_t max_batch = budget >= 0 ? planner.max_batch(budget, req.device.is_cpu()) : -1;

  if (as_json) {
    nlohmann::ordered_json j;
    j["levels"] = levels;
    j["base"] = base;
    j["params"] = planner.num_params();
    j["height"] = height;
    j["width"] = width;
    j["precision"] = precision;
    j["device"] = req.device.str();
    j["optimizer"] = optimizer;
    j["world"] = world;
    j["batch"] = batch;
    j["bytes_per_sample"] = per_sample;
    j["resident_bytes"] = planner.resident_bytes();
    j["peak_bytes"] = peak;
    if (reserved > 0) j["reserved_bytes"] = reserved;
    j["reader_host_bytes"] = planner.reader_host_bytes(batch);
    if (arena > 0) {
      j["cuda_graph_arena_bytes"] = arena;
      j["cuda_graph_live_peak_bytes"] = arena_live;
    }
    j["budget_bytes"] = budget >= 0 ? nlohmann::ordered_json(budget) : nlohmann::ordered_json(nullptr);
    j["max_batch"] = max_batch >= 0 ? nlohmann::ordered_json(max_batch) : nlohmann::ordered_json(nullptr);
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("plan: %d-level UNet, base %d (%lld parameters), %lldx%lld samples, %s, %s, %s%s\n", levels, base,
              static_cast<long long>(planner.num_params()), static_cast<long long>(height),
              static_cast<long long>(width), precision.c_str(), req.device.str().c_str(), optimizer.c_str(),
              world > 1 ? (", " + std::to_string(world) + " ranks").c_str() : "");
  std::printf("  resident (parameters, optimizer state%s): %s\n", world > 1 ? ", gradient buckets" : "",
              gb(planner.resident_bytes()).c_str());
  std::printf("  per sample:                        %s\n", gb(per_sample).c_str());
  std::printf("  peak of a step at batch %-10lld %s\n", static_cast<long long>(batch), gb(peak).c_str());
  if (reserved > 0) {
    std::printf("  allocator's blocks, cached too:    %s (held if the cache is never emptied)\n", gb(reserved).c_str());
  }
  if (arena > 0) {
    std::printf("  CUDA graph arena:                  %s (the recorded step's live peak %s)\n", gb(arena).c_str(),
                gb(arena_live).c_str());
  }
  std::printf("  reader, host memory:               %s (%d slots)\n", gb(planner.reader_host_bytes(batch)).c_str(),
              prefetch);
  if (max_batch >= 0) {
    std::printf("  largest batch in %.2f GiB: %lld%s\n", static_cast<double>(budget) / double(int64_t{1} << 30),
                static_cast<long long>(max_batch), world > 1 ? " per rank" : "");
  } else {
    std::printf("  largest batch: give --memory-gib (no %s here to ask)\n", req.device.str().c_str());
  }
  return 0;
}

}  // namespace seis
