// NcclComm: the communicator for GPU buffers (see engine/communicator.h). CUDA builds only.
//
// Bootstrap: rank 0's ncclUniqueId goes to every rank over the host communicator (MPI), then
// ncclCommInitRank; with world 1 and no launcher the id is made locally (no MPI at all).
// Streams: every collective runs on a comm stream of its own, after an event recorded on the
// compute stream; wait() makes the compute stream wait for the collective's event (on the device)
// and, on the host, polls that event and ncclCommGetAsyncError until it is done, aborting the
// communicator (ncclCommAbort) and throwing on an NCCL error or after comm_timeout_seconds().
// Host calls (metrics, barrier, abort) go to the host communicator.
#pragma once
#include <memory>

#include "engine/communicator.h"

namespace seis {

#if SEIS_HAVE_CUDA
std::unique_ptr<Communicator> make_nccl_comm(std::unique_ptr<Communicator> host, int device);
#endif

}  // namespace seis
