// Streams and events beyond the compute stream of engine/device_runtime.h: the copy stream that
// the reader uploads on, and an RAII event to order one stream after another without a
// device-wide synchronisation. Opaque CUDA types, so that host code needs no CUDA headers.
// In a build without CUDA every function here throws (there are no devices to ask for), except those
// with nothing to do: releasing the cache, 0 bytes reserved, an event that is always done.
#pragma once
#include <cstdint>

struct CUstream_st;
struct CUevent_st;

namespace seis {

// The stream host-to-device uploads of `device` run on (non-blocking, created on first use).
CUstream_st* cuda_copy_stream(int device);
void cuda_stream_synchronize(CUstream_st* stream);

// Frees the allocator's cached blocks of `device` (memory not in use) back to the driver.
void cuda_release_cached_memory(int device);
// Bytes the allocator of `device` holds from the driver: in use plus cached.
int64_t cuda_reserved_bytes(int device);

// An event on one device, without timing. Not copyable; movable.
class CudaEvent {
 public:
  explicit CudaEvent(int device);
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  CudaEvent(CudaEvent&& o) noexcept;
  CudaEvent& operator=(CudaEvent&& o) noexcept;

  // Marks the point reached by `stream` so far.
  void record(CUstream_st* stream);
  // Makes `stream` wait (on the device, not the host) until the recorded point is reached.
  void wait(CUstream_st* stream) const;
  // True when the recorded work is done (or nothing was recorded).
  bool done() const;
  // Blocks the host until the recorded work is done.
  void synchronize() const;

  int device() const { return device_; }
  CUevent_st* get() const { return event_; }

 private:
  int device_ = 0;
  CUevent_st* event_ = nullptr;
};

}  // namespace seis
