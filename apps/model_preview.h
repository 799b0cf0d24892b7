// preview.png of a model on one gather: input (seismic amplitude clipping), label and prediction.
#pragma once
#include <string>

#include "apps/trainer.h"

namespace seis {

// The first of the first `scan` samples of `src` whose label has an event (0 when none has).
int64_t first_labelled_sample(const SampleSource& src, int64_t scan);

void write_model_preview(const UNet& model, const SampleSource& src, int64_t index, Normalize normalize,
                         const std::string& path);

}  // namespace seis
