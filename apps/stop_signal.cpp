#include "apps/stop_signal.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace seis {

namespace {
std::atomic<int> g_signal{0};

void on_signal(int sig) {
  if (g_signal.exchange(sig) != 0) {
    static const char msg[] = "seisseg: second signal, exiting without saving\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(128 + sig);
  }
  static const char msg[] = "seisseg: stopping after this step and saving the state (send again to exit now)\n";
  (void)!::write(2, msg, sizeof msg - 1);
}
}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;  // interrupted reads and writes resume instead of failing with EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return g_signal.load() != 0; }
int stop_signal() { return g_signal.load(); }

}  // namespace seis
