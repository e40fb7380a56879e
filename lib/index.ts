// clipscale's public API.
export { Tensor, numelOf } from './tensor.js';
export type { DType } from './tensor.js';
export { native } from './native.js';
export * as ops from './ops.js';
export { version } from './version.js';
