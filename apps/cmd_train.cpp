// seisseg train: trains the UNet on HDF5 sample files, streamed by the asynchronous reader.
// Writes config.json, metrics.jsonl, weights.safetensors, best.safetensors, state.safetensors and
// preview.png to --out; --resume DIR continues a run exactly where it stopped. On data with ground
// truth, each validation also scores picks and events in the analyst's units (apps/validation_scores.h),
// and --best-by chooses the figure best.safetensors keeps.
#include <unistd.h>

#include <cfloat>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>
#include <variant>

#include "apps/checkpoint.h"
#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/graph_step.h"
#include "apps/memory_plan.h"
#include "apps/model_preview.h"
#include "apps/reader_batch_source.h"
#include "apps/run_config.h"
#include "apps/run_dir.h"
#include "apps/stop_signal.h"
#include "apps/trainer.h"
#include "apps/validation_scores.h"
#include "apps/weights.h"
#include "engine/communicator.h"
#include "engine/device_runtime.h"
#include "engine/file_io.h"
#include "engine/printable.h"
#include "engine/safetensors.h"
#include "io/dataset_paths.h"
#include "io/sample_set.h"
#include "io/sample_source.h"

namespace seis {

namespace {

using json = nlohmann::ordered_json;

using Settings = TrainSettings;

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// "N files, <FNV-1a 64 of the paths>": which files, in which order, in a few bytes.
std::string files_digest(const std::vector<std::string>& files) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const std::string& f : files) {
    for (const char c : f + '\n') {
      h ^= static_cast<uint8_t>(c);
      h *= 0x100000001b3ull;
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::to_string(files.size()) + " files, " + hex;
}

// --batch N: 1 <= N <= 2^20.
int64_t parse_batch(const std::string& v) {
  try {
    size_t used = 0;
    const long long b = std::stoll(v, &used);
    if (used == v.size() && b >= 1 && b <= (int64_t{1} << 20)) return b;
  } catch (const std::exception&) {
  }
  throw UsageError("--batch: '" + v + "' is not auto or a number in 1..1048576");
}

// "500" (steps) or "10m" (minutes).
void parse_save_every(const std::string& v, int64_t* steps, double* minutes) {
  *steps = 0;
  *minutes = 0;
  try {
    size_t used = 0;
    if (!v.empty() && v.back() == 'm') {
      *minutes = std::stod(v.substr(0, v.size() - 1), &used);
      if (used == v.size() - 1 && *minutes > 0) return;
    } else {
      *steps = std::stoll(v, &used);
      if (used == v.size() && *steps > 0) return;
    }
  } catch (const std::exception&) {
  }
  throw UsageError("--save-every: '" + v + "' is not a step count (500) or minutes (10m)");
}

void parse_crop(const std::string& v, int64_t* h, int64_t* w) {
  *h = *w = 0;
  if (v.empty()) return;
  const size_t x = v.find('x');
  try {
    size_t u1 = 0, u2 = 0;
    if (x != std::string::npos) {
      *h = std::stoll(v.substr(0, x), &u1);
      *w = std::stoll(v.substr(x + 1), &u2);
      if (u1 == x && u2 == v.size() - x - 1 && *h > 0 && *w > 0) return;
    }
  } catch (const std::exception&) {
  }
  throw UsageError("--crop: '" + v + "' is not HxW (e.g. 2048x2048)");
}

// --FLAG for one setting of the table (apps/run_config.h): its help, default and check.
void add_setting_option(CLI::App& app, const TrainSetting& setting, Settings& s) {
  std::visit(
      [&](auto member) {
        auto& value = s.*member;
        using T = std::decay_t<decltype(value)>;
        const std::string flag = std::string("--") + setting.flag;
        if constexpr (std::is_same_v<T, bool>) {
          app.add_flag(flag, value, setting.help);
        } else {
          CLI::Option* o = app.add_option(flag, value, setting.help);
          const SettingCheck& c = setting.check;
          if (c.kind != SettingCheck::count) o->capture_default_str();
          switch (c.kind) {
            case SettingCheck::range:
            case SettingCheck::count:
              if constexpr (std::is_integral_v<T>) {
                o->check(CLI::Range(static_cast<int64_t>(c.lo), static_cast<int64_t>(c.hi)));
              } else {
                o->check(CLI::Range(c.lo, c.hi));
              }
              break;
            case SettingCheck::positive:
              o->check(CLI::PositiveNumber);
              break;
            case SettingCheck::non_negative:
              o->check(CLI::NonNegativeNumber);
              break;
            case SettingCheck::one_of:
              o->check(CLI::IsMember(c.names));
              break;
            case SettingCheck::any:
              break;
          }
        }
      },
      setting.member);
}

// The one-line error of apps/main.cpp, from this rank, then MPI_Abort for the whole job.
[[noreturn]] void abort_job(Communicator& comm, const std::string& what, int code) {
  const std::string line = printable(what.substr(0, what.find('\n')), 4096);
  std::fprintf(stderr, "seisseg train: rank %d of %d: %s\n", comm.rank(), comm.world(), line.c_str());
  comm.abort(code);
  std::_Exit(code);  // not reached: abort() does not return
}

// abort_job with the exit code of the error's kind (as apps/main.cpp maps them).
[[noreturn]] void abort_job_on(Communicator& comm, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const UsageError& u) {
    abort_job(comm, u.what(), 2);
  } catch (const InputError& i) {
    abort_job(comm, i.what(), 1);
  } catch (const std::bad_alloc&) {
    abort_job(comm, "out of memory", 1);
  } catch (const std::exception& x) {
    abort_job(comm, std::string("internal error: ") + x.what(), 1);
  } catch (...) {
    abort_job(comm, "internal error", 1);
  }
}

// Share of free device memory that --batch auto plans for: the rest absorbs what the plan leaves
// out (validation batches, checkpoint copies, other processes).
constexpr double kAutoBatchMemoryShare = 0.9;

// Bytes as "12.3 GB".
std::string gb_text(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

// --batch auto: the largest global batch whose planned step (apps/memory_plan.h) fits every rank's
// device, at most the training set. Every rank plans its own device; the smallest answer wins.
// The training reader reads train_samples of source_samples gathers gather_width traces wide (with
// O_DIRECT when direct_reads), and keeps their normalisation statistics (counted in the plan).
int64_t auto_batch(const Settings& s, int64_t height, int64_t width, int64_t train_samples, int64_t source_samples,
                   int64_t gather_width, bool direct_reads, Device device, Communicator& comm) {
  if (s.conv_backend == "cudnn") {
    throw UsageError("--batch auto plans the memory of our kernels; with --conv-backend cudnn give --batch N");
  }
  PlanRequest req;
  req.model.levels = s.levels;
  req.model.base = s.base;
  req.height = height;
  req.width = width;
  req.math = parse_precision(s.precision);
  req.device = device;
  req.optimizer = parse_optimizer(s.optimizer);
  req.world = comm.world();
  req.prefetch = s.prefetch;
  req.reader_threads = s.threads;
  req.cuda_graph = cuda_graph_switch();
  req.step_arena = cuda_arena_switch();
  req.train_samples = train_samples;
  req.source_samples = source_samples;
  req.gather_width = gather_width;
  req.direct_reads = direct_reads;
  MemoryPlanner planner(req);
  const int world = comm.world();
  // A GPU is its rank's own. CPU ranks may share one node's memory: each plans for its share
  // (conservative across nodes), and the reader's slots count against it too.
  const int sharing = device.is_cpu() ? world : 1;
  const int64_t budget =
      static_cast<int64_t>(kAutoBatchMemoryShare * static_cast<double>(device_memory_budget(device)) / sharing);
  const int64_t per_rank = planner.max_batch(budget, device.is_cpu());
  int64_t agreed = per_rank;
  for (int r = 0; r < world; ++r) {
    int64_t v = per_rank;
    comm.broadcast_host_bytes(&v, sizeof v, r);
    agreed = std::min(agreed, v);
  }
  if (agreed == 0) {
    throw InputError("--batch auto: one " + std::to_string(height) + "x" + std::to_string(width) +
                     " sample does not fit: a step needs " + std::to_string(planner.step_peak_bytes(1)) +
                     " bytes of the " + std::to_string(budget) + " available on " + device.str() +
                     " (train on crops with --crop, or use fewer --levels or a smaller --base)");
  }
  if (train_samples < world) {
    throw InputError("--batch auto: " + std::to_string(train_samples) + " training samples for " +
                     std::to_string(world) + " ranks: each rank needs at least one");
  }
  const int64_t batch = std::min(agreed, train_samples / world) * world;
  if (comm.rank() == 0) {
    std::printf(
        "seisseg train: --batch auto: %lld (%lld per rank): a step's planned peak is %.2f GB of %.2f GB usable\n",
        static_cast<long long>(batch), static_cast<long long>(batch / world),
        static_cast<double>(planner.step_peak_bytes(batch / world)) / 1e9, static_cast<double>(budget) / 1e9);
  }
  return batch;
}

// The step whose validation chose the weights of best.safetensors (and of best.pending.safetensors).
constexpr const char* kBestStepKey = "seisseg.best_step";

// best.pending.safetensors, the best weights of a validation whose figure no committed state records
// yet: once the state of step `committed` (or later) records it, it becomes best.safetensors; a
// pending file from past that step (a kill before the state's commit) is dropped, for the resumed run
// decides again.
void settle_pending_best(const RunDir& dir, int64_t committed) {
  const std::string pending = dir.file("best.pending.safetensors");
  if (!std::filesystem::exists(pending)) return;
  int64_t step = std::numeric_limits<int64_t>::max();
  try {
    const auto meta = load_safetensors(pending).metadata;
    const auto it = meta.find(kBestStepKey);
    if (it != meta.end()) step = std::stoll(it->second);
  } catch (const std::exception&) {  // unreadable: never committed, as far as anyone can tell
  }
  if (step <= committed) {
    commit_atomic(pending, dir.file("best.safetensors"));
  } else {
    std::error_code ec;
    std::filesystem::remove(pending, ec);
  }
}

// Everything after the flags: data, model, optimizer, the loop and its outputs. With world > 1,
// every rank runs this; only rank 0 writes files and prints.
int run_training(Settings s, bool batch_auto, const std::string& resume, int64_t save_steps, double save_minutes,
                 int64_t crop_h, int64_t crop_w, Device device, Communicator& comm) {
  const int world = comm.world(), rank = comm.rank();
  const bool root = rank == 0;
  const std::vector<std::string> train_files = expand_dataset_paths(s.data, "--data");
  SampleSet train_set(train_files, s.max_open_files);
  if (!train_set.has_label()) throw InputError(train_set.describe(0) + ": no /label: training needs labels");
  std::unique_ptr<SampleSet> val_set;
  IndexSplit split;
  if (!s.val.empty()) {
    val_set = std::make_unique<SampleSet>(expand_dataset_paths(s.val, "--val"), s.max_open_files);
    if (!val_set->has_label()) throw InputError(val_set->describe(0) + ": no /label: validation needs labels");
    for (int64_t i = 0; i < train_set.size(); ++i) split.train.push_back(i);
  } else {
    split = split_validation(train_set.size(), s.val_fraction, s.seed);
  }

  // --direct-io auto: around the page cache only for a training set larger than the memory available.
  int64_t train_bytes = 0, available = 0;
  for (int64_t g : split.train) train_bytes += train_set.bytes_per_sample(g);
  try {
    available = device_memory_budget(Device::cpu());  // (MemAvailable)
  } catch (const Error&) {
    available = INT64_MAX;  // unknown: auto keeps the page cache
  }
  const bool direct_io = s.direct_io == "on" || (s.direct_io == "auto" && train_bytes > available);

  if (batch_auto) {
    s.batch = auto_batch(s, crop_h > 0 ? crop_h : train_set.height(), crop_w > 0 ? crop_w : train_set.width(),
                         static_cast<int64_t>(split.train.size()), train_set.size(), train_set.width(), direct_io,
                         device, comm);
  }

  UNetConfig mc;
  mc.levels = s.levels;
  mc.base = s.base;
  UNet model(mc, s.seed, device);
  model.check_input_size(crop_h > 0 ? crop_h : train_set.height(), crop_w > 0 ? crop_w : train_set.width(),
                         crop_h > 0 ? "--crop" : train_set.describe(0));
  if (val_set) model.check_input_size(val_set->height(), val_set->width(), val_set->describe(0));
  // Validation and previews run on whole gathers, also when training on crops.
  if (!split.val.empty()) model.check_input_size(train_set.height(), train_set.width(), train_set.describe(0));
  if (!s.init.empty() && resume.empty()) model.load(s.init);

  OptimizerConfig oc;
  oc.kind = parse_optimizer(s.optimizer);
  oc.lr = s.lr;
  oc.momentum = s.momentum;
  oc.weight_decay = s.weight_decay;
  Optimizer optimizer(oc, model.param_vars());

  SampleReaderOptions ro;
  ro.indices = split.train;
  ro.batch = s.batch;
  ro.seed = s.seed;
  ro.prefetch = s.prefetch;
  ro.threads = s.threads;
  ro.normalize = parse_normalize(s.normalize);
  ro.augment.flip_receivers = s.flip;
  ro.augment.max_shift = s.max_shift;
  ro.augment.crop_height = crop_h;
  ro.augment.crop_width = crop_w;
  ro.augment.crop_multiple = int64_t{1} << (s.levels - 1);
  ro.skip_bad_samples = s.skip_bad_samples;
  ro.device = device;
  ro.world = world;
  ro.rank = rank;
  ro.dtype = batch_dtype(ExecConfig{parse_precision(s.precision), parse_conv_backend(s.conv_backend)}, device);
  ro.direct_io = direct_io;
  ReaderBatchSource batches(train_set, ro);
  if (batches.batches_per_epoch() == 0) {
    throw UsageError("--batch " + std::to_string(s.batch) + " is larger than the " +
                     std::to_string(split.train.size()) + " training samples");
  }
  std::vector<int64_t> val_indices = split.val;
  if (val_set) {
    for (int64_t i = 0; i < val_set->size(); ++i) val_indices.push_back(i);
  }
  SampleSubset val_src(val_set ? *val_set : train_set, val_indices);
  // Picks and events of the validation gathers, scored against their truth when the data has it.
  std::string no_scores;
  const std::unique_ptr<ArrivalScorer> scorer =
      make_validation_scorer(val_set ? *val_set : train_set, val_indices, &no_scores);
  if (!scorer && s.best_by != "iou") {
    throw UsageError("--best-by " + s.best_by + " needs validation data with ground truth, but " + no_scores +
                     "; use --best-by iou");
  }

  TrainOptions opt;
  opt.batch = s.batch;
  opt.steps = s.steps > 0 ? s.steps : std::max<int64_t>(1, s.epochs) * batches.batches_per_epoch();
  opt.lr.kind = parse_lr_schedule(s.lr_schedule);
  opt.lr.lr = s.lr;
  opt.lr.warmup_steps = s.warmup_steps;
  opt.lr.total_steps = opt.steps;
  opt.lr.min_lr = s.min_lr;
  opt.pos_weight = s.pos_weight;
  opt.normalize = ro.normalize;
  opt.exec.math = parse_precision(s.precision);
  opt.exec.conv_backend = parse_conv_backend(s.conv_backend);
  opt.log_every = s.log_every;
  opt.val_every = s.val_every > 0 ? s.val_every : batches.batches_per_epoch();
  opt.threshold = s.threshold;
  if (world > 1) opt.comm = &comm;
  // The step as a CUDA graph: behind a switch until a GPU run has checked it (issue 9).
  opt.cuda_graph = cuda_graph_switch();
  opt.step_arena = cuda_arena_switch();

  RunDir dir(s.out);
  // What a checkpoint must share with the run that resumes from it.
  json identity = train_identity(s);
  // A directory, glob or list may name other files by the time a run resumes, and the files' order
  // is the samples' order: the list itself is part of the identity then.
  if (train_files != split_list(s.data)) identity["data-files"] = files_digest(train_files);
  CheckpointState state;
  if (!resume.empty()) {
    state = load_checkpoint(resume + "/state.safetensors", model, optimizer, nlohmann::json(identity));
    if (root) {
      // The metrics past the checkpoint are logged again by this run; a temporary file left by a
      // kill mid-write is no longer anyone's.
      dir.truncate_metrics(state.progress.step);
      std::error_code ec;
      for (const char* f : {"metrics.jsonl", "state.safetensors", "weights.safetensors", "best.safetensors",
                            "best.pending.safetensors", "preview.png", "config.json"}) {
        std::filesystem::remove(dir.file(std::string(f) + ".tmp"), ec);
      }
      settle_pending_best(dir, state.progress.step);
    }
    if (state.progress.step >= opt.steps) {
      if (root)
        std::printf("seisseg train: %s already ran %lld of %lld steps; nothing to do (raise --steps or --epochs)\n",
                    resume.c_str(), static_cast<long long>(state.progress.step), static_cast<long long>(opt.steps));
      return 0;
    }
  } else if (root) {
    // A fresh run: nothing of an earlier run in this directory may be mistaken for this one's.
    std::error_code ec;
    for (const char* f : {"metrics.jsonl", "state.safetensors", "weights.safetensors", "best.safetensors",
                          "best.pending.safetensors", "preview.png"}) {
      std::filesystem::remove(dir.file(f), ec);
    }
  }
  // Every rank starts from rank 0's weights (a fresh init, --init or the checkpoint).
  if (world > 1) {
    for (const Var& v : model.param_vars()) comm.broadcast(v->value.data<float>(), v->value.numel(), device, 0);
  }
  if (root)
    dir.write_config({{"version", SEIS_VERSION},
                      {"command", "train"},
                      {"settings", s.to_json()},
                      {"resolved",
                       {{"device", device.str()},
                        {"parameters", model.num_params()},
                        {"train_samples", split.train.size()},
                        {"val_samples", val_src.size()},
                        {"batches_per_epoch", batches.batches_per_epoch()},
                        {"total_steps", opt.steps},
                        {"val_every", opt.val_every},
                        {"height", train_set.height()},
                        {"width", train_set.width()},
                        {"ranks", world},
                        {"batch_auto", batch_auto}}}});

  const std::map<std::string, std::string> weights_meta = {
      {"seisseg.normalize", s.normalize},
      {kTrainedGatherKey, std::to_string(train_set.height()) + "x" + std::to_string(train_set.width())}};
  const int64_t preview_index = root && val_src.size() > 0 ? first_labelled_sample(val_src, 64) : 0;
  const bool tty = ::isatty(1) != 0;
  if (root)
    std::printf(
        "seisseg train: %d-level UNet (%lld parameters) on %s; %lld training and %lld validation gathers of "
        "%lldx%lld; %lld steps (%lld per epoch) from step %lld\n",
        s.levels, static_cast<long long>(model.num_params()),
        device.is_cpu() ? "cpu" : cuda_device_description(device.index).c_str(),
        static_cast<long long>(split.train.size()), static_cast<long long>(val_src.size()),
        static_cast<long long>(train_set.height()), static_cast<long long>(train_set.width()),
        static_cast<long long>(opt.steps), static_cast<long long>(batches.batches_per_epoch()),
        static_cast<long long>(state.progress.step));
  if (root && ro.direct_io) {
    std::printf(
        "reading the training data around the page cache (O_DIRECT, --direct-io %s): %.1f GB%s\n", s.direct_io.c_str(),
        static_cast<double>(train_bytes) / 1e9,
        s.direct_io == "auto" ? (", more than the " + gb_text(available) + " of memory available").c_str() : "");
  }
  if (root && world > 1) {
    std::printf("data parallel: %d ranks (%s), %lld samples per rank and step of the global batch %lld\n", world,
                comm.backend(), static_cast<long long>(s.batch / world), static_cast<long long>(s.batch));
  }
  std::fflush(stdout);

  // state.safetensors (weights, optimizer state and position in one file) is written last: it is the
  // commit point of a checkpoint. A kill before its rename leaves the previous state, which a resume
  // continues from; what was written past it (weights.safetensors, preview.png, metrics.jsonl lines)
  // the resumed run writes again as it retraces the steps. The best weights, whose figure the state
  // records, wait in best.pending.safetensors until the state that records it is committed, and
  // only then become best.safetensors (settle_pending_best): best.safetensors always belongs to the
  // state's best figure, even when a resume does not retrace bit for bit (another device or rank
  // count).
  auto checkpoint = [&](const TrainProgress& p) {
    if (!root) return;
    state.progress = p;
    model.save(dir.file("weights.safetensors"), weights_meta);
    save_checkpoint(dir.file("state.safetensors"), model, optimizer, state, nlohmann::json(identity));
    settle_pending_best(dir, p.step);
  };
  const auto t_start = std::chrono::steady_clock::now();
  auto t_saved = t_start;
  const int64_t first_step = state.progress.step;
  install_stop_handlers();
  TrainHooks hooks;
  // Test-only fault injection, SEIS_TEST_FAULT=RANK:STEP:kill|stop|throw: that rank raises SIGKILL or
  // SIGSTOP, or throws, after that step (tests/mpi_train_cli_test.cpp, tests/mpi_hung_rank_cli_test.cpp:
  // the job must end, never hang).
  int fault_rank = -1;
  int64_t fault_step = -1;
  std::string fault_kind;
  if (const char* f = std::getenv("SEIS_TEST_FAULT")) {
    char kind[16] = {0};
    long long st = -1;
    if (std::sscanf(f, "%d:%lld:%15s", &fault_rank, &st, kind) == 3) {
      fault_step = st;
      fault_kind = kind;
    }
  }
  hooks.on_log = [&](const StepLog& l) {
    int64_t io[2] = {batches.bytes_read(), batches.skipped()};
    if (world > 1) comm.allreduce_sum_host(io, 2);  // every rank calls on_log at the same steps
    if (!root) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    const double eta = elapsed / static_cast<double>(l.step - first_step) * static_cast<double>(opt.steps - l.step);
    const double mbps = static_cast<double>(io[0]) / 1e6 / std::max(1e-9, elapsed);
    if (tty) {
      const int width = 24, filled = static_cast<int>(width * l.step / opt.steps);
      std::printf("\r[%s%s] %lld/%lld  epoch %lld  loss %.4f  %.1f samples/s  data wait %.0f%%  ETA %s   ",
                  std::string(static_cast<size_t>(filled), '#').c_str(),
                  std::string(static_cast<size_t>(width - filled), '.').c_str(), static_cast<long long>(l.step),
                  static_cast<long long>(opt.steps), static_cast<long long>(l.epoch), l.loss, l.samples_per_s,
                  100 * l.data_wait, format_duration(eta).c_str());
    } else {
      std::printf("step %lld/%lld  epoch %lld  loss %.4f  lr %.3g  %.1f samples/s  data wait %.0f%%  ETA %s\n",
                  static_cast<long long>(l.step), static_cast<long long>(opt.steps), static_cast<long long>(l.epoch),
                  l.loss, l.lr, l.samples_per_s, 100 * l.data_wait, format_duration(eta).c_str());
    }
    std::fflush(stdout);
    dir.append_metrics({{"step", l.step},
                        {"epoch", l.epoch},
                        {"loss", l.loss},
                        {"lr", l.lr},
                        {"samples_per_s", l.samples_per_s},
                        {"data_wait", l.data_wait},
                        {"read_mb_per_s", mbps},
                        {"skipped_samples", io[1]},
                        {"peak_bytes", l.peak_bytes}});
  };
  if (scorer) hooks.on_val_logits = [&](int64_t i, const float* logits) { scorer->add(i, logits); };
  hooks.on_validation = [&](const TrainProgress& p, const EvalResult& v) {
    // Every rank takes the same scores (finish() is collective) and so makes the same decisions.
    ArrivalScores a;
    if (scorer) a = scorer->finish(world > 1 ? &comm : nullptr);
    const bool iou_better = v.iou() > state.best_iou;
    if (iou_better) state.best_iou = v.iou();
    bool f1_better = false, mae_better = false;
    if (scorer) {
      f1_better = a.events.f1() > state.best_event_f1;
      if (f1_better) state.best_event_f1 = a.events.f1();
      // No arrival picked within the tolerance is the worst MAE (DBL_MAX); the first validation is
      // still the best so far, so that best.safetensors exists.
      const double mae = a.picks.hits > 0 ? a.picks.mae_ms : DBL_MAX;
      mae_better = state.best_pick_mae_ms < 0 || mae < state.best_pick_mae_ms;
      if (mae_better) state.best_pick_mae_ms = mae;
    }
    const bool best = s.best_by == "event_f1" ? f1_better : s.best_by == "pick_mae" ? mae_better : iou_better;
    if (!root) return;
    if (best) {
      std::map<std::string, std::string> meta = weights_meta;
      meta[kBestStepKey] = std::to_string(p.step);
      model.save(dir.file("best.pending.safetensors"), meta);
    }
    write_model_preview(model, val_src, preview_index, opt.normalize, dir.file("preview.png"));
    if (tty) std::printf("\n");
    std::string arrivals;
    if (scorer) {
      char buf[96];
      if (a.picks.hits > 0) {
        std::snprintf(buf, sizeof buf, "  event F1 %.4f  pick MAE %.1f ms", a.events.f1(), a.picks.mae_ms);
      } else {
        std::snprintf(buf, sizeof buf, "  event F1 %.4f  pick MAE - (no arrival picked)", a.events.f1());
      }
      arrivals = buf;
    }
    std::printf("validation at step %lld: loss %.4f  IoU %.4f  precision %.4f  recall %.4f  F1 %.4f%s%s\n",
                static_cast<long long>(p.step), v.loss, v.iou(), v.precision(), v.recall(), v.f1(), arrivals.c_str(),
                best ? "  (best)" : "");
    std::fflush(stdout);
    json m = {{"step", p.step}, {"epoch", p.epoch},           {"val_loss", v.loss},
              {"iou", v.iou()}, {"precision", v.precision()}, {"recall", v.recall()},
              {"f1", v.f1()},   {"best_iou", state.best_iou}};
    if (scorer) {
      m["event_f1"] = a.events.f1();
      m["event_precision"] = a.events.precision();
      m["event_recall"] = a.events.recall();
      m["false_per_hour"] = a.events.false_per_hour();
      // null, not 0, when no arrival was picked within the tolerance: 0 would read as perfect.
      m["pick_mae_ms"] = a.picks.hits > 0 ? json(a.picks.mae_ms) : json(nullptr);
      m["pick_hit10"] = a.picks.hit10();
      m["p_hit10"] = a.picks.p_hit10();
    }
    dir.append_metrics(m);
  };
  hooks.after_step = [&](const TrainProgress& p) {
    if (rank == fault_rank && p.step == fault_step) {
      if (fault_kind == "kill") std::raise(SIGKILL);
      if (fault_kind == "stop") {
        std::raise(SIGSTOP);  // the other ranks wait for this one in their next collective
        return;
      }
      throw InputError("SEIS_TEST_FAULT: rank " + std::to_string(rank) + " fails after step " + std::to_string(p.step));
    }
    const auto now = std::chrono::steady_clock::now();
    const bool due = (save_steps > 0 && p.step % save_steps == 0) ||
                     (save_minutes > 0 && std::chrono::duration<double>(now - t_saved).count() >= 60 * save_minutes);
    if (due && p.step < opt.steps) {
      checkpoint(p);
      t_saved = now;
    }
  };
  hooks.should_stop = [] { return stop_requested(); };
  if (world > 1) hooks.on_error = [&comm](std::exception_ptr e) { abort_job_on(comm, e); };

  const TrainResult r =
      train(model, optimizer, batches, val_src.size() > 0 ? &val_src : nullptr, opt, state.progress, hooks);
  checkpoint(r.progress);
  if (tty && root) std::printf("\n");
  if (r.stopped) {
    if (root)
      std::printf("stopped by signal %d at step %lld; state saved in %s (continue with --resume %s)\n", stop_signal(),
                  static_cast<long long>(r.progress.step), dir.path().c_str(), dir.path().c_str());
    return 128 + stop_signal();
  }
  if (root)
    std::printf("done: %lld steps in %s; wrote %s/{weights,best,state}.safetensors, metrics.jsonl, preview.png\n",
                static_cast<long long>(r.progress.step), format_duration(r.seconds).c_str(), dir.path().c_str());
  return 0;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  Settings s;
  std::string resume;
  CLI::App app{"seisseg train: train the UNet on HDF5 sample files", "seisseg train"};
  std::string batch_s = std::to_string(s.batch);
  for (const TrainSetting& setting : train_settings()) {
    if (setting.flag == std::string("batch")) {
      app.add_option("--batch", batch_s, setting.help)->capture_default_str();  // a number or auto: parse_batch
    } else {
      add_setting_option(app, setting, s);
    }
    if (setting.flag == std::string("out")) app.add_option("--resume", resume, "continue the run in this directory");
  }
  if (!parse_cli(app, argc, argv)) return 0;
  const bool batch_auto = batch_s == "auto";
  if (!batch_auto) s.batch = parse_batch(batch_s);
  if (batch_auto && !resume.empty()) {
    throw UsageError("--batch auto: a resumed run keeps the batch it was started with");
  }

  // A resume takes the interrupted run's settings; flags given now may change only a few of them.
  if (!resume.empty()) {
    const std::string cfg_path = resume + "/config.json";
    json merged = read_run_config(cfg_path, resume);
    // Runs from before --best-by kept the best IoU.
    if (!merged.contains("best-by")) merged["best-by"] = "iou";
    const json given = s.to_json();
    for (auto it = given.begin(); it != given.end(); ++it) {
      if (app.count("--" + it.key()) == 0) continue;
      const bool may_change = find_train_setting(it.key())->on_resume == OnResume::may_change;
      if (!may_change && merged.contains(it.key()) && merged[it.key()] != it.value()) {
        throw UsageError("--" + it.key() + " " + it.value().dump() + " differs from the resumed run's " +
                         merged[it.key()].dump() + " (only steps, epochs and I/O settings may change)");
      }
      merged[it.key()] = it.value();
    }
    if (app.count("--steps") > 0) merged["epochs"] = 0;
    if (app.count("--epochs") > 0) merged["steps"] = 0;
    if (app.count("--out") == 0) merged["out"] = resume;
    s = train_settings_from_json(merged, cfg_path);
  }
  if (s.data.empty()) {
    throw UsageError("--data is required (HDF5 files, comma-separated; a directory, a quoted glob or @LIST)");
  }
  if (s.threshold <= 0.0f || s.threshold >= 1.0f) throw UsageError("--threshold must be inside (0, 1)");
  if (s.epochs > 0 && s.steps > 0) throw UsageError("give --epochs or --steps, not both");
  if (!s.val.empty() && app.count("--val-fraction") > 0 && s.val_fraction > 0) {
    throw UsageError("give --val or --val-fraction, not both");
  }
  int64_t save_steps = 0;
  double save_minutes = 0;
  parse_save_every(s.save_every, &save_steps, &save_minutes);
  int64_t crop_h = 0, crop_w = 0;
  parse_crop(s.crop, &crop_h, &crop_w);

  const LaunchInfo launch = detect_launch();
  if (launch.world > 1 && !batch_auto && s.batch % launch.world != 0) {
    throw UsageError("--batch " + std::to_string(s.batch) + " is not divisible by the " + std::to_string(launch.world) +
                     " ranks; use a multiple of " + std::to_string(launch.world));
  }
  Device device = parse_device(s.device);
  // One GPU per rank: "cuda" and "auto" mean the GPU of this rank's local rank.
  if (launch.launched && device.is_cuda() && s.device.find(':') == std::string::npos) {
    device = Device::cuda(launch.local_rank % cuda_device_count());
  }
  std::unique_ptr<Communicator> comm = make_communicator(device);
  if (comm->world() == 1) {
    return run_training(s, batch_auto, resume, save_steps, save_minutes, crop_h, crop_w, device, *comm);
  }
  // A rank that fails must end the job: the others would wait for it in the next collective.
  try {
    return run_training(s, batch_auto, resume, save_steps, save_minutes, crop_h, crop_w, device, *comm);
  } catch (...) {
    abort_job_on(*comm, std::current_exception());
  }
}

}  // namespace seis
