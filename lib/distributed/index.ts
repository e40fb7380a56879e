// The distributed layer's public surface, for lib/index.ts to re-export.
export { readDistEnvironment, describeDistEnvironment, type DistEnvironment, type Launcher } from './environment.js';
export type { Communicator, CommBuffer, CommBackend, ReduceOp } from './communicator.js';
export { rankDevice } from './rank_device.js';
export { createCommunicator, ncclBlockers, type CreateCommunicatorOptions, type BackendChoice } from './create.js';
export { SingleProcessCommunicator } from './single_communicator.js';
export { InProcessCommunicator, createInProcessGroup } from './in_process_communicator.js';
export { TcpCommunicator, type TcpCommunicatorOptions } from './tcp_communicator.js';
export { MpiCommunicator, mpiSupport } from './mpi_communicator.js';
export { NcclCommunicator, ncclSupport, formatNcclVersion, NCCL_SHARED_GPU_MIN_VERSION, type NcclSupport, type NcclCommunicatorOptions } from './nccl_communicator.js';
export { readDistTimeouts, DEFAULT_COLLECTIVE_TIMEOUT_S, DEFAULT_CONNECT_TIMEOUT_S, type DistTimeouts } from './timeouts.js';
export { allReduceTensors, broadcastTensors, DEFAULT_BUCKET_FLOATS } from './tensors.js';
