// seisseg: train segmentation networks on seismic gathers at full resolution.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "apps/commands.h"
#include "engine/error.h"
#include "engine/printable.h"

namespace {

const char* kUsage = "seisseg " SEIS_VERSION
                     ": full-resolution segmentation of seismic gathers\n"
                     "\n"
                     "usage: seisseg <command> [options]   (seisseg <command> --help for its options)\n"
                     "\n"
                     "commands:\n"
                     "  demo     synthesise a small set, train a UNet, report validation metrics, write a preview\n"
                     "  synth    write a synthetic microseismic set in the HDF5 dataset format\n"
                     "  info     validate and summarise HDF5 dataset files\n"
                     "  convert  SEG-Y to the HDF5 dataset format, or an HDF5 set into the layout read fastest\n"
                     "  train    train the UNet on HDF5 sample files (checkpoints, exact resume)\n"
                     "  predict  segment every gather of an HDF5 file with trained weights (picks, events)\n"
                     "  detect   events and picks on continuous records of any length (network or STA/LTA)\n"
                     "  evaluate score picks.csv and events.csv against a file's ground truth (event F1, pick ms)\n"
                     "  plan     memory of a training step: bytes per sample, peak, largest batch that fits\n";

// One line: the first line of the message, printable (what it quotes from files already is; this
// is the last guard before the terminal).
std::string one_line(const char* what) {
  const std::string s = what;
  return seis::printable(s.substr(0, s.find('\n')), 4096);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("seisseg: no command given; usage: seisseg <command> [options] (see seisseg --help)\n", stderr);
    return 2;
  }
  if (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    std::printf("seisseg %s\n", SEIS_VERSION);
    return 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "demo") return seis::cmd_demo(argc - 1, argv + 1);
    if (cmd == "synth") return seis::cmd_synth(argc - 1, argv + 1);
    if (cmd == "info") return seis::cmd_info(argc - 1, argv + 1);
    if (cmd == "convert") return seis::cmd_convert(argc - 1, argv + 1);
    if (cmd == "train") return seis::cmd_train(argc - 1, argv + 1);
    if (cmd == "predict") return seis::cmd_predict(argc - 1, argv + 1);
    if (cmd == "plan") return seis::cmd_plan(argc - 1, argv + 1);
    if (cmd == "detect") return seis::cmd_detect(argc - 1, argv + 1);
    if (cmd == "evaluate") return seis::cmd_evaluate(argc - 1, argv + 1);
    std::fprintf(stderr, "seisseg: unknown command '%s' (try seisseg --help)\n", cmd.c_str());
    return 2;
  } catch (const seis::UsageError& e) {
    std::fprintf(stderr, "seisseg %s: %s\n", cmd.c_str(), one_line(e.what()).c_str());
    return 2;
  } catch (const seis::InputError& e) {
    std::fprintf(stderr, "seisseg %s: %s\n", cmd.c_str(), one_line(e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "seisseg %s: out of memory\n", cmd.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seisseg %s: internal error: %s\n", cmd.c_str(), one_line(e.what()).c_str());
    return 1;
  }
}
