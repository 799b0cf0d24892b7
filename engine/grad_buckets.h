// Gradient buckets for data-parallel training (PyTorch DDP's scheme): the parameters, in reverse
// registration order (the order backward produces their gradients), are grouped into buckets of
// about `bucket_bytes`, each with one flat buffer. When a parameter's gradient is set
// (VarImpl::on_grad_ready), it is copied into its slice of the buffer and the parameter's grad
// becomes a view of that slice; when a bucket's last gradient arrives, its in-place sum-allreduce
// starts at once and runs (comm thread or comm stream) while backward goes on. finish() waits for
// every bucket, after which each grad holds the sum over the ranks.
//
// The loss is a mean over the GLOBAL batch (bce_with_logits' mean_over), so each rank's gradient
// is a partial sum of the global gradient and the sum over ranks needs no division.
//
// Assumption: each parameter gets exactly one gradient per backward (checked by accumulate_grad).
// A parameter with no gradient in a step is reduced as zeros (every rank must issue the same
// collectives) and keeps no grad, as without buckets.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/autograd.h"
#include "engine/communicator.h"

namespace seis {

class GradBucketer {
 public:
  static constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;

  // Installs the hooks on `params` (all on one device, f32); they are removed by the destructor.
  GradBucketer(Communicator& comm, std::vector<Var> params, int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradBucketer();
  GradBucketer(const GradBucketer&) = delete;
  GradBucketer& operator=(const GradBucketer&) = delete;

  // After backward: starts the buckets still waiting (parameters without a gradient), waits for
  // all, and gets ready for the next step.
  void finish();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t total_floats() const;
  std::vector<int64_t> bucket_floats() const;  // per bucket, in start order
  // Buckets started during backward in the last step (all, when every parameter had a gradient).
  int64_t started_in_backward() const { return last_started_in_backward_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    std::vector<int64_t> offsets;
    Tensor flat;
    int64_t pending = 0;  // gradients still to arrive this step
    int64_t handle = -1;  // of the running allreduce, -1 when not started
  };
  void on_ready(size_t bucket, size_t slot, VarImpl& v);
  void start(Bucket& b);

  Communicator& comm_;
  std::vector<Var> params_;
  std::vector<Bucket> buckets_;
  std::vector<int> got_grad_;  // per parameter, this step
  int64_t started_in_backward_ = 0, last_started_in_backward_ = 0;
};

}  // namespace seis
