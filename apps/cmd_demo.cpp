// seisseg demo: the embedded default. Synthesises a small microseismic training and validation set
// to HDF5 files, trains a small UNet through the streaming reader on whatever device exists,
// reports validation metrics and writes the run's files (weights, metrics, preview); then detects
// on a continuous record and scores events and picks beside a tuned STA/LTA.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/detect_input.h"
#include "apps/detection_flags.h"
#include "apps/detection_run.h"
#include "apps/model_preview.h"
#include "apps/reader_batch_source.h"
#include "apps/run_dir.h"
#include "apps/trainer.h"
#include "apps/weights.h"
#include "engine/device_runtime.h"
#include "engine/ops.h"
#include "io/ground_truth.h"
#include "io/sample_set.h"
#include "io/synth_file.h"
#include "models/detection_score.h"

namespace seis {

namespace {

// Event F1 and picks of a detection run against a record's ground truth, as one table row.
nlohmann::json score_row(const GroundTruth& truth, const DetectionResult& r) {
  const EventScore e = score_events(truth, r.events, ScoreOptions{});
  const PickScore p = score_picks(truth, r.picks, ScoreOptions{});
  return {{"event_f1", e.f1()},      {"precision", e.precision()},
          {"recall", e.recall()},    {"false_per_hour", e.false_per_hour()},
          {"p_hit10", p.p_hit10()},  {"hit10", p.hit10()},
          {"pick_mae_ms", p.mae_ms}, {"detections", e.detections},
          {"picks", p.picks}};
}

// The analyst's view of the trained network: a continuous record it has never seen, in windows, its
// events and picks scored beside the classical STA/LTA whose thresholds are chosen on another record.
nlohmann::json detect_on_records(const UNet& model, const SynthConfig& sc, Normalize normalize, double seconds,
                                 int threads, const RunDir& dir) {
  SynthRecordOptions ro;
  ro.samples = std::llround(seconds / sc.dt);
  ro.events_per_minute = 6;
  SynthConfig tune_cfg = sc, test_cfg = sc;
  tune_cfg.seed = sc.seed + 0x51ed2701;
  test_cfg.seed = sc.seed + 0x2545f491;
  const std::string tune_path = dir.file("record_tune.h5"), test_path = dir.file("record_test.h5");
  write_synth_record(tune_path, tune_cfg, ro, threads, 0, SEIS_VERSION, false);
  write_synth_record(test_path, test_cfg, ro, threads, 0, SEIS_VERSION, false);
  const GroundTruth truth = read_ground_truth(test_path);
  std::printf(
      "detecting on a continuous record of %.0f s x %lld receivers (%lld events, SNR %g..%g dB), windows of "
      "%lld samples\n",
      seconds, static_cast<long long>(sc.width),
      static_cast<long long>(truth.events.size() - static_cast<size_t>(truth.events_without_arrivals)), sc.snr_db_lo,
      sc.snr_db_hi, static_cast<long long>(sc.height));
  std::fflush(stdout);

  // Both detectors' thresholds are chosen on the tuning record, then both run on the test record.
  WindowOptions wo;
  wo.rows = sc.height;
  wo.normalize = normalize;
  const WindowedInference inference(model, wo);
  const DetectionSettings ds = tune_unet_detector({tune_path}, inference, DetectionSettings{}, ScoreOptions{});
  DetectInput input(test_path);
  const auto t0 = std::chrono::steady_clock::now();
  DetectionResult unet;
  detect_unet(input, inference, picker_options(ds, sc.dt), association_options(ds, sc.dx, sc.width, test_path),
              collect_into(&unet));
  const double unet_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const StaLtaOptions sta = tune_sta_lta({tune_path}, sta_lta_defaults(sc.dt), sc.dt, ds.event_gap_ms, ScoreOptions{});
  DetectionResult classic;
  detect_sta_lta(input, sta, ds.event_gap_ms, collect_into(&classic));

  const nlohmann::json a = score_row(truth, unet), b = score_row(truth, classic);
  std::printf("                  event F1  precision  recall  false/hour  P picks within 10 ms  pick MAE\n");
  for (const auto& [name, j] : {std::make_pair("UNet", a), std::make_pair("STA/LTA (tuned)", b)}) {
    std::printf("  %-15s  %8.3f  %9.3f  %6.3f  %10.1f  %20.3f  %5.1f ms\n", name, j["event_f1"].get<double>(),
                j["precision"].get<double>(), j["recall"].get<double>(), j["false_per_hour"].get<double>(),
                j["p_hit10"].get<double>(), j["pick_mae_ms"].get<double>());
  }
  std::printf(
      "  (chosen on another record: UNet threshold %g, picks at %g with a delay of %g ms, %lld traces per front, at "
      "x%.1f real "
      "time on this machine; STA/LTA trigger on %g, off %g, %g traces in coincidence)\n",
      ds.threshold, ds.pick_threshold > 0 ? ds.pick_threshold : ds.threshold, ds.pick_delay_ms,
      static_cast<long long>(ds.min_traces), seconds / std::max(unet_s, 1e-9), sta.thr_on, sta.thr_off,
      sta.coincidence_sum);
  return {{"record_s", seconds},
          {"receivers", sc.width},
          {"unet", a},
          {"sta_lta", b},
          {"unet_thresholds", {ds.threshold, ds.min_traces, ds.pick_threshold > 0 ? ds.pick_threshold : ds.threshold}},
          {"unet_pick_delay_ms", ds.pick_delay_ms},
          {"sta_lta_thresholds", {sta.thr_on, sta.thr_off, sta.coincidence_sum}}};
}

}  // namespace

int cmd_demo(int argc, char** argv) {
  CLI::App app{"seisseg demo: synthesise a small microseismic set, train a UNet, report and preview", "seisseg demo"};
  std::string out = "seisseg-demo", device_s = "auto", snr = "0:10", precision = "fp32", conv_backend = "own";
  int64_t steps = 500, train_samples = 2000, val_samples = 64, size = 256, batch = 4;
  int levels = 4, base = 8;
  float lr = 2e-3f;
  uint64_t seed = 1;
  bool keep_data = false;
  double record_seconds = 120;
  app.add_option("--out", out, "output directory")->capture_default_str();
  app.add_option("--device", device_s, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", precision, kPrecisionHelp)
      ->capture_default_str()
      ->check(CLI::IsMember(precision_names()));
  app.add_option("--conv-backend", conv_backend, "CUDA conv kernels: own or cudnn")
      ->capture_default_str()
      ->check(CLI::IsMember(conv_backend_names()));
  app.add_option("--steps", steps, "training steps")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--batch", batch, "batch size")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{4096}));
  app.add_option("--lr", lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--size", size, "gather height and width (time samples = receivers)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{16}, int64_t{8192}));
  app.add_option("--levels", levels, "UNet levels")->capture_default_str()->check(CLI::Range(1, 12));
  app.add_option("--base", base, "UNet base channels")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--train-samples", train_samples, "synthetic training gathers")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app.add_option("--val-samples", val_samples, "synthetic validation gathers")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--snr-db", snr, "SNR range LO:HI in dB")->capture_default_str();
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  app.add_flag("--keep-data", keep_data, "keep the synthesised training set, validation set and records in --out");
  app.add_option("--record-seconds", record_seconds,
                 "after training, detect on a continuous record this long, scored beside STA/LTA (0: skip)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  if (!parse_cli(app, argc, argv)) return 0;

  SynthConfig sc;
  sc.height = size;
  sc.width = size;
  sc.seed = seed;
  parse_range("--snr-db", snr, &sc.snr_db_lo, &sc.snr_db_hi);
  validate_synth_config(sc);
  UNetConfig mc;
  mc.levels = levels;
  mc.base = base;
  const Device device = parse_device(device_s);
  UNet model(mc, seed, device);
  model.check_input_size(size, size, "--size");
  if (batch > train_samples) throw UsageError("--batch is larger than --train-samples");
  RunDir dir(out);
  std::error_code old_ec;
  std::filesystem::remove(dir.file("metrics.jsonl"), old_ec);  // a fresh run's metrics only

  // The data, synthesised to files and streamed back by the reader as in any training run.
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::string train_path = dir.file("train.h5"), val_path = dir.file("val.h5");
  std::printf("seisseg demo: synthesising %lld training and %lld validation gathers of %lldx%lld, SNR %g..%g dB\n",
              static_cast<long long>(train_samples), static_cast<long long>(val_samples), static_cast<long long>(size),
              static_cast<long long>(size), sc.snr_db_lo, sc.snr_db_hi);
  std::fflush(stdout);
  write_synth_file(train_path, sc, train_samples, threads, 0, SEIS_VERSION, false);
  SynthConfig vc = sc;
  vc.seed = seed + 0x9e3779b97f4a7c15ull;  // another seed: no validation gather is a training gather
  write_synth_file(val_path, vc, val_samples, threads, 0, SEIS_VERSION, false);
  SampleSet train_set({train_path}), val_set({val_path});

  OptimizerConfig oc;
  oc.kind = OptimizerKind::adam;
  oc.lr = lr;
  Optimizer optimizer(oc, model.param_vars());
  TrainOptions opt;
  opt.batch = batch;
  opt.steps = steps;
  opt.lr.lr = lr;
  opt.exec.math = parse_precision(precision);
  opt.exec.conv_backend = parse_conv_backend(conv_backend);
  opt.log_every = std::max<int64_t>(1, std::min<int64_t>(25, steps / 20));
  SampleReaderOptions ro;
  ro.batch = batch;
  ro.seed = seed;
  ro.normalize = opt.normalize;
  ro.device = device;
  ro.dtype = batch_dtype(opt.exec, device);  // (as train)
  ReaderBatchSource batches(train_set, ro);

  dir.write_config({{"version", SEIS_VERSION},
                    {"command", "demo"},
                    {"device", device.str()},
                    {"precision", precision},
                    {"conv_backend", conv_backend},
                    {"levels", levels},
                    {"base", base},
                    {"parameters", model.num_params()},
                    {"size", size},
                    {"batch", batch},
                    {"steps", steps},
                    {"optimizer", "adam"},
                    {"lr", lr},
                    {"normalize", normalize_name(opt.normalize)},
                    {"train_samples", train_samples},
                    {"val_samples", val_samples},
                    {"snr_db", {sc.snr_db_lo, sc.snr_db_hi}},
                    {"seed", seed}});
  std::printf("training a %d-level UNet (%lld parameters) on %s\n", levels, static_cast<long long>(model.num_params()),
              device.is_cpu() ? "cpu" : cuda_device_description(device.index).c_str());
  std::fflush(stdout);
  TrainHooks hooks;
  hooks.on_log = [&](const StepLog& l) {
    const double eta = l.elapsed_s / static_cast<double>(l.step) * static_cast<double>(steps - l.step);
    std::printf("step %6lld/%lld  loss %.4f  %7.1f samples/s  data wait %3.0f%%  ETA %s\n",
                static_cast<long long>(l.step), static_cast<long long>(steps), l.loss, l.samples_per_s,
                100 * l.data_wait, format_duration(eta).c_str());
    std::fflush(stdout);
    dir.append_metrics({{"step", l.step},
                        {"epoch", l.epoch},
                        {"loss", l.loss},
                        {"lr", l.lr},
                        {"samples_per_s", l.samples_per_s},
                        {"data_wait", l.data_wait}});
  };
  const TrainResult r = train(model, optimizer, batches, &val_set, opt, TrainProgress{}, hooks);
  const EvalResult& v = r.val;
  const double pos_frac = static_cast<double>(v.tp + v.fn) / static_cast<double>(std::max<int64_t>(1, v.pixels));
  std::printf("validation (%lld gathers): loss %.4f  IoU %.3f  precision %.3f  recall %.3f  F1 %.3f\n",
              static_cast<long long>(val_samples), v.loss, v.iou(), v.precision(), v.recall(), v.f1());
  std::printf("baselines: all-zero mask IoU 0.000, all-one mask IoU %.3f\n", pos_frac);
  const nlohmann::json detect =
      record_seconds > 0 ? detect_on_records(model, sc, opt.normalize, record_seconds, threads, dir) : nlohmann::json();
  dir.append_metrics({{"step", steps},
                      {"val_loss", v.loss},
                      {"iou", v.iou()},
                      {"precision", v.precision()},
                      {"recall", v.recall()},
                      {"f1", v.f1()},
                      {"seconds", r.seconds},
                      {"detect", detect}});
  model.save(dir.file("weights.safetensors"), {{"seisseg.normalize", normalize_name(opt.normalize)},
                                               {kTrainedGatherKey, std::to_string(size) + "x" + std::to_string(size)}});
  write_model_preview(model, val_set, first_labelled_sample(val_set, val_samples), opt.normalize,
                      dir.file("preview.png"));
  if (!keep_data) {
    std::error_code ec;
    for (const char* f : {"train.h5", "val.h5", "record_tune.h5", "record_test.h5"}) {
      std::filesystem::remove(dir.file(f), ec);
    }
  }
  std::printf("wrote %s/{weights.safetensors,preview.png,metrics.jsonl,config.json}%s in %.0f s of training\n",
              out.c_str(), keep_data ? " and the data {train,val,record_tune,record_test}.h5" : "", r.seconds);
  return 0;
}

}  // namespace seis
