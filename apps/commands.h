// The subcommands of the seisseg program. Each takes its own argv (argv[0] = the subcommand) and
// returns the exit code; UsageError (exit 2) and InputError (exit 1) are reported by main.
#pragma once

namespace seis {

int cmd_demo(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_convert(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_predict(int argc, char** argv);
int cmd_plan(int argc, char** argv);
int cmd_detect(int argc, char** argv);
int cmd_evaluate(int argc, char** argv);

}  // namespace seis
