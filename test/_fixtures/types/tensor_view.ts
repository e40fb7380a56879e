// Type-checked by test/tensor-types.test.ts (never run): what users write with tensor views.
import { Tensor } from '../../../lib/tensor.js';

using x = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]);
const values: number[] = Array.from(x.view());
const f32: Float32Array = x.view();
using ids = Tensor.from(new Int32Array([1, 2]));
const i32: Int32Array = ids.view();
using big = Tensor.from(new BigInt64Array([1n]));
const i64: BigInt64Array = big.view();
using e = Tensor.empty([3], 'i32');
const ints: number[] = Array.from(e.view());
using z = Tensor.zeros([3]);
const zs: number[] = Array.from(z.view());
using c = x.clone('bf16');
const bits: Uint16Array = c.view();
using r = x.reshape([4]);
const flat: number[] = [...r.view()];
const any: Tensor = ids;
const floats: Float32Array = any.viewF32();
export { values, f32, i32, i64, ints, zs, bits, flat, floats };
// @ts-expect-error an f32 tensor's view is not an Int32Array
const wrong: Int32Array = x.view();
export { wrong };
