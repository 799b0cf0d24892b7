// NcclComm (see engine/nccl_comm.h). Compiled only with CUDA.
#include "engine/nccl_comm.h"

#include <cstdlib>

#if SEIS_HAVE_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "engine/cuda_check.h"
#include "engine/cuda_stream.h"
#include "engine/device_runtime.h"

namespace seis {

namespace {

class NcclComm final : public Communicator {
 public:
  NcclComm(std::unique_ptr<Communicator> host, int device) : host_(std::move(host)), device_(device) {
    cuda_set_device(device_);
    ncclUniqueId id{};
    if (host_->rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    host_->broadcast_host_bytes(&id, static_cast<int64_t>(sizeof id), 0);
    NCCL_CHECK(ncclCommInitRank(&comm_, host_->world(), id, host_->rank()));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    timeout_s_ = comm_timeout_seconds();
  }

  ~NcclComm() override {
    if (comm_ != nullptr) {
      CUDA_WARN(cudaStreamSynchronize(stream_));
      ncclCommDestroy(comm_);
    }
    if (stream_ != nullptr) CUDA_WARN(cudaStreamDestroy(stream_));
  }

  int rank() const override { return host_->rank(); }
  int world() const override { return host_->world(); }
  int local_rank() const override { return host_->local_rank(); }
  const char* backend() const override { return "nccl"; }

  int64_t allreduce_sum_async(float* buf, int64_t n, Device device) override {
    check_device(device);
    after_compute();
    NCCL_CHECK(ncclAllReduce(buf, buf, static_cast<size_t>(n), ncclFloat, ncclSum, comm_, stream_));
    return record_done();
  }

  void wait(int64_t handle) override {
    auto it = pending_.find(handle);
    if (it == pending_.end()) return;  // already waited for
    it->second.wait(cuda_compute_stream(device_));
    poll_until_done(it->second);
    pending_.erase(pending_.begin(), std::next(it));  // collectives complete in order on the comm stream
  }

  void broadcast(float* buf, int64_t n, Device device, int root) override {
    check_device(device);
    after_compute();
    NCCL_CHECK(ncclBroadcast(buf, buf, static_cast<size_t>(n), ncclFloat, root, comm_, stream_));
    wait(record_done());
  }

  void allreduce_sum_host(int64_t* v, int64_t n) override { host_->allreduce_sum_host(v, n); }
  void allreduce_sum_host(double* v, int64_t n) override { host_->allreduce_sum_host(v, n); }
  void broadcast_host_bytes(void* buf, int64_t bytes, int root) override {
    host_->broadcast_host_bytes(buf, bytes, root);
  }
  void barrier() override { host_->barrier(); }

  [[noreturn]] void abort(int code) override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    host_->abort(code);
    std::_Exit(code);  // not reached: the host communicator's abort does not return
  }

 private:
  void check_device(Device device) const {
    SEIS_CHECK(device.is_cuda() && device.index == device_,
               "NcclComm of cuda:" << device_ << " got a buffer on " << device.str());
  }

  // The comm stream waits (on the device) for the compute work queued so far.
  void after_compute() {
    CudaEvent ready(device_);
    ready.record(cuda_compute_stream(device_));
    ready.wait(stream_);
  }

  int64_t record_done() {
    CudaEvent done(device_);
    done.record(stream_);
    pending_.emplace(++issued_, std::move(done));
    return issued_;
  }

  void poll_until_done(const CudaEvent& ev) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
    while (!ev.done()) {
      ncclResult_t async = ncclSuccess;
      NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
      if (async != ncclSuccess) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        throw Error(std::string("NCCL error on rank ") + std::to_string(rank()) + ": " + ncclGetErrorString(async) +
                    " (a peer failed or the network broke; set NCCL_DEBUG=WARN for details)");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        throw Error("NCCL collective did not finish within " + std::to_string(static_cast<int64_t>(timeout_s_)) +
                    " s on rank " + std::to_string(rank()) + " (a rank hung?); SEIS_COMM_TIMEOUT_S sets the limit");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  std::unique_ptr<Communicator> host_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  double timeout_s_ = 600;
  int64_t issued_ = 0;
  std::map<int64_t, CudaEvent> pending_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_comm(std::unique_ptr<Communicator> host, int device) {
  return std::make_unique<NcclComm>(std::move(host), device);
}

}  // namespace seis

#endif  // SEIS_HAVE_CUDA
