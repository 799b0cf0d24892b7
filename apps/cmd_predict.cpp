// seisseg predict: runs trained weights over every gather of an HDF5 file (any H and W: padded, or
// in overlapping windows, models/windowed_inference.h), streamed through the reader one gather at a
// time, and writes /prob (sigmoid of the logits, f32) and /mask (prob >= threshold, u8) to a new
// HDF5 file, and optionally picks.csv and events.csv and a SEG-Y copy of a converted input with the
// probabilities as samples (io/segy_writer.h); with labels present it also reports the pixel
// metrics. Padding traces of a converted input (/trace_valid 0) get probability 0, so no pick or
// event comes from them and the metrics count them as background.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/detection_flags.h"
#include "apps/detection_run.h"
#include "apps/segy_columns.h"
#include "apps/segy_prob_writer.h"
#include "apps/trainer.h"
#include "apps/weights.h"
#include "engine/device_runtime.h"
#include "engine/safetensors.h"
#include "io/detection_csv.h"
#include "io/ground_truth.h"
#include "io/hdf5_dataset.h"
#include "io/normalize.h"
#include "io/png_preview.h"
#include "io/sample_reader.h"
#include "io/sample_set.h"
#include "io/segy_headers.h"

namespace seis {

int cmd_predict(int argc, char** argv) {
  std::string weights, in, out, png, png_dir, normalize_s, device_s = "auto", precision = "fp32", picks_path,
                                                           events_path, segy_out;
  int64_t segy_pick_byte = 0;
  DetectionSettings ds;
  CLI::App app{"seisseg predict: segment every gather of an HDF5 file with trained weights", "seisseg predict"};
  app.add_option("--weights", weights, "weights (safetensors) from seisseg train or demo")->required();
  app.add_option("--in", in, "input HDF5 file (/data of any H and W; /label optional)")->required();
  app.add_option("--out", out, "output HDF5 file (/prob, /mask)")->required();
  app.add_option("--png", png, "preview PNG of the first gather");
  app.add_option("--png-dir", png_dir, "one preview PNG per gather in this directory");
  app.add_option("--picks", picks_path, "picks.csv: one row per arrival picked on a trace");
  app.add_option("--events", events_path, "events.csv: picks coherent across traces");
  app.add_option("--segy-out", segy_out,
                 "SEG-Y copy of the converted input: its headers, the probability as IEEE float samples");
  app.add_option("--segy-pick-byte", segy_pick_byte,
                 "with --segy-out: each trace's first pick (ms, rounded; -1 for none) as a 4-byte integer at this "
                 "trace header byte (1-based)")
      ->check(CLI::Range(1, 237));
  add_picking_flags(app, ds);
  add_window_flags(app, ds, "the whole gather");
  app.add_option("--normalize", normalize_s, "trace, sample or none (default: as the weights were trained)")
      ->check(CLI::IsMember(normalize_names()));
  app.add_option("--device", device_s, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", precision, kPrecisionHelp)
      ->capture_default_str()
      ->check(CLI::IsMember(precision_names()));
  app.footer(
      "Gathers of any size: a gather runs whole (zero-padded to the network's multiple) unless --window or "
      "--window-receivers is smaller; then it runs in overlapping windows, each normalised on its own, stacked by "
      "weight.");
  if (!parse_cli(app, argc, argv)) return 0;
  const float threshold = ds.threshold;
  if (threshold <= 0.0f || threshold >= 1.0f) throw UsageError("--threshold must be inside (0, 1)");
  if (segy_pick_byte > 0 && segy_out.empty()) throw UsageError("--segy-pick-byte needs --segy-out");
  for (const std::string* o : {&picks_path, &events_path, &segy_out}) {
    std::error_code same_ec;
    if (!o->empty() && std::filesystem::equivalent(in, *o, same_ec)) throw UsageError(*o + " is the input file");
  }
  std::error_code same_ec;
  if (std::filesystem::equivalent(in, out, same_ec)) {
    throw UsageError("--out " + out + " is the input file");
  }

  const Device device = parse_device(device_s);
  const InferenceWeights iw = load_inference_weights(weights, device);
  const UNet& model = *iw.model;
  const Normalize normalize = parse_normalize(!normalize_s.empty() ? normalize_s : iw.normalize_or("trace"));
  ExecConfig exec;
  exec.math = parse_precision(precision);
  iw.model->set_exec(exec);
  if (device.is_cuda()) cuda_set_device(device.index);

  SampleSet set({in});
  if (!png_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(png_dir, ec);
    if (ec) throw InputError(png_dir + ": cannot create: " + ec.message());
  }
  const int64_t n = set.size(), h = set.height(), w = set.width();
  const double dt = set.file(0).info().dt, dx = set.file(0).info().dx;
  // The SEG-Y side of a converted input: trace identity for the CSVs, padding, headers for --segy-out.
  std::unique_ptr<SegyHeadersFile> segy = std::make_unique<SegyHeadersFile>(in, n, w);
  std::unique_ptr<SegyProbWriter> segy_writer;
  if (!segy_out.empty()) segy_writer = std::make_unique<SegyProbWriter>(segy_out, in, *segy, h, segy_pick_byte);
  const bool identity = segy->has_table();
  const bool picking = !picks_path.empty() || !events_path.empty() || segy_pick_byte > 0;
  if (picking && !(dt > 0)) throw InputError(in + ": no dt attribute: picks and events need the sampling interval");
  // With ground truth in the input, the picks and events are scored too (kept in memory for that).
  const bool scored = dt > 0 && has_ground_truth(in);
  // (Read before any output is written: damaged ground truth fails the run with nothing written.)
  std::optional<GroundTruth> truth;
  if (scored) truth = read_ground_truth(in);
  DetectionResult kept;
  H5SampleWriter::Options wo;
  wo.n = n;
  wo.height = h;
  wo.width = w;
  wo.data_name = "prob";
  wo.label_name = "mask";
  wo.dt = dt;
  wo.dx = dx;
  H5SampleWriter writer(out, wo);
  writer.set_attribute("weights", weights);
  writer.set_attribute("source", in);
  writer.set_attribute("threshold", static_cast<double>(threshold));
  writer.set_attribute("normalize", normalize_name(normalize));
  std::unique_ptr<PicksCsvWriter> picks_csv;
  std::unique_ptr<EventsCsvWriter> events_csv;
  if (!picks_path.empty()) {
    std::vector<std::string> pick_extra = identity ? segy_pick_columns() : std::vector<std::string>{};
    if (ds.fill_moveout) pick_extra.push_back("filled");
    picks_csv = std::make_unique<PicksCsvWriter>(picks_path, pick_extra);
  }
  if (!events_path.empty()) {
    events_csv =
        std::make_unique<EventsCsvWriter>(events_path, identity ? segy_event_columns() : std::vector<std::string>{});
  }
  std::unique_ptr<ArrivalDetector> detector;
  if (picking || scored) {
    detector = std::make_unique<ArrivalDetector>(w, dt, picker_options(ds, dt), association_options(ds, dx, w, in),
                                                 fill_options(ds));
  }

  WindowOptions wopt;
  wopt.rows = ds.window;
  wopt.cols = ds.window_receivers;
  wopt.overlap = ds.overlap;
  wopt.normalize = normalize;
  const WindowedInference inference(model, wopt);

  // One gather at a time, in file order, raw (each window is normalised on its own): memory stays
  // at a few gathers whatever N is.
  SampleReaderOptions ro;
  ro.batch = 1;
  ro.shuffle = false;
  ro.normalize = Normalize::none;
  ro.device = Device::cpu();
  ro.prefetch = 2;
  SampleReader reader(set, ro);
  EvalResult metrics;
  std::vector<float> prob(static_cast<size_t>(h * w));
  std::vector<uint8_t> mask(static_cast<size_t>(h * w));
  std::vector<Pick> picks;
  std::vector<Detection> events;
  int64_t n_picks = 0, n_events = 0;
  for (int64_t i = 0; i < n; ++i) {
    ReaderBatch b = reader.next();
    const int64_t g = b.samples[0];
    const float* raw = b.data.data<float>();
    inference.run(
        h, w, [&](int64_t t0, int64_t rows, float* dst) { std::memcpy(dst, raw + t0 * w, sizeof(float) * rows * w); },
        [&](int64_t t0, int64_t rows, const float* p) {
          std::memcpy(prob.data() + t0 * w, p, sizeof(float) * rows * w);
        });
    segy->begin(g);
    if (segy->has_padding()) {
      for (int64_t j = 0; j < w; ++j) {
        if (segy->valid(j)) continue;
        for (int64_t t = 0; t < h; ++t) prob[static_cast<size_t>(t * w + j)] = 0.0f;
      }
    }
    for (int64_t j = 0; j < h * w; ++j)
      mask[static_cast<size_t>(j)] = prob[static_cast<size_t>(j)] >= threshold ? 1 : 0;
    if (b.label.defined()) {
      const uint8_t* l = b.label.data<uint8_t>();
      for (int64_t j = 0; j < h * w; ++j) {
        const uint8_t m = mask[static_cast<size_t>(j)];
        metrics.tp += m & l[j];
        metrics.fp += m & (1 - l[j]);
        metrics.fn += (1 - m) & l[j];
      }
      metrics.pixels += h * w;
    }
    writer.write(g, prob.data(), mask.data());
    if (detector) {
      picks.clear();
      events.clear();
      detector->begin(g);
      if (segy->has_padding()) {
        std::vector<uint8_t> live(static_cast<size_t>(w));
        for (int64_t j = 0; j < w; ++j) live[static_cast<size_t>(j)] = segy->valid(j) ? 1 : 0;
        detector->set_live_traces(std::move(live));
      }
      detector->feed(prob.data(), h, &picks, &events);
      detector->finish(&picks, &events);
      if (picks_csv) {
        for (const Pick& p : picks) {
          const SegyHeaderRow* r = identity ? segy->row(p.trace) : nullptr;
          std::vector<std::string> values = r ? segy_pick_values(*r) : std::vector<std::string>{};
          if (ds.fill_moveout) values.push_back(p.filled ? "1" : "0");
          picks_csv->write(p, values);
        }
      }
      if (events_csv) {
        const std::string ffid = identity ? segy_gather_ffid(*segy, w) : "";
        for (const Detection& d : events) {
          events_csv->write(d, identity ? std::vector<std::string>{ffid} : std::vector<std::string>{});
        }
      }
      n_picks += static_cast<int64_t>(picks.size());
      n_events += static_cast<int64_t>(events.size());
      if (scored) {
        kept.picks.insert(kept.picks.end(), picks.begin(), picks.end());
        kept.events.insert(kept.events.end(), events.begin(), events.end());
      }
    }
    if (segy_writer) segy_writer->write_gather(prob.data(), w, picks);
    if ((!png.empty() && i == 0) || !png_dir.empty()) {
      std::vector<float> shown(raw, raw + h * w);
      normalize_gather(normalize, h, w, shown.data());
      const uint8_t* lp = b.label.defined() ? b.label.data<uint8_t>() : nullptr;
      if (!png.empty() && i == 0) write_preview_png(png, h, w, shown.data(), lp, prob.data());
      if (!png_dir.empty()) {
        char name[64];
        std::snprintf(name, sizeof name, "/gather_%06lld.png", static_cast<long long>(g));
        write_preview_png(png_dir + name, h, w, shown.data(), lp, prob.data());
      }
    }
    if (n >= 10 && (i + 1) % std::max<int64_t>(1, n / 10) == 0) {
      std::fprintf(stderr, "predict: %lld/%lld gathers\n", static_cast<long long>(i + 1), static_cast<long long>(n));
    }
  }
  writer.commit();
  if (picks_csv) picks_csv->commit();
  if (events_csv) events_csv->commit();
  if (segy_writer) {
    segy_writer->commit();
    std::printf("%lld traces with their SEG-Y headers -> %s (IEEE float, %s)\n",
                static_cast<long long>(segy_writer->traces()), segy_out.c_str(),
                segy->big_endian() ? "big-endian" : "little-endian");
  }
  std::printf("seisseg predict: %lld gathers of %lldx%lld -> %s (/prob, /mask at threshold %g)\n",
              static_cast<long long>(n), static_cast<long long>(h), static_cast<long long>(w), out.c_str(), threshold);
  if (picking) {
    std::printf("picked %lld arrivals%s%s, %lld events%s%s\n", static_cast<long long>(n_picks), picks_csv ? " -> " : "",
                picks_path.c_str(), static_cast<long long>(n_events), events_csv ? " -> " : "", events_path.c_str());
  }
  if (metrics.pixels > 0) {
    std::printf("against /label: IoU %.4f  precision %.4f  recall %.4f  F1 %.4f\n", metrics.iou(), metrics.precision(),
                metrics.recall(), metrics.f1());
  }
  if (scored) {
    const EventScore es = score_events(*truth, kept.events, ScoreOptions{});
    const PickScore ps = score_picks(*truth, kept.picks, ScoreOptions{});
    std::printf(
        "against /picks and /events: event F1 %.3f (precision %.3f, recall %.3f), picks within 10 ms %.3f "
        "(P %.3f), within 20 ms %.3f, MAE %.2f ms\n",
        es.f1(), es.precision(), es.recall(), ps.hit10(), ps.p_hit10(), ps.hit20(), ps.mae_ms);
  }
  return 0;
}

}  // namespace seis
