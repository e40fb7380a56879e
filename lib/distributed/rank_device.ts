// Which GPU a rank trains on when it asks for 'cuda': cuda:LOCAL_RANK, as torchrun scripts do,
// wrapped around the GPUs this machine has (LOCAL_RANK mod count), so more ranks than GPUs share
// them (NCCL ≥ 2.30 with NCCL_MULTI_RANK_GPU_ENABLE=1; the emulated device, one "GPU" per
// process, always). 'cuda:N' is taken as given; 'cpu' stays 'cpu'.
import { native } from '../native.js';
import type { DistEnvironment } from './environment.js';

export function rankDevice(device: string, env: DistEnvironment): string {
  if (device !== 'cuda') return device;
  const status = (native.cudaBackendStatus as () => { loaded: boolean; deviceCount: number })();
  const count = status.loaded && status.deviceCount > 0 ? status.deviceCount : 1;
  return `cuda:${env.localRank % count}`;
}
