// SIGINT/SIGTERM handling for long runs: the first signal asks the run to stop after the current
// step (it then saves its state); a second one ends the process at once.
#pragma once

namespace seis {

void install_stop_handlers();
bool stop_requested();
int stop_signal();  // the signal that asked, 0 if none

}  // namespace seis
