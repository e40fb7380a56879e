// Parameter initialisation as PyTorch and OpenCLIP do it, from a seeded generator.
import type { Rng } from '../util/rng.js';
import type { Parameter } from './module.js';

export function normal(p: Parameter, std: number, rng: Rng): void {
  const v = p.values();
  for (let i = 0; i < v.length; i++) v[i] = rng.normal() * std;
}

export function uniform(p: Parameter, bound: number, rng: Rng): void {
  const v = p.values();
  for (let i = 0; i < v.length; i++) v[i] = (rng.uniform() * 2 - 1) * bound;
}

export function constant(p: Parameter, value: number): void {
  p.values().fill(value);
}

/** nn.Linear / nn.Conv2d default: kaiming_uniform(a=√5) on the weight gives U(±1/√fan_in); the bias the same. */
export function torchDefault(p: Parameter, fanIn: number, rng: Rng): void {
  uniform(p, 1 / Math.sqrt(fanIn), rng);
}

/** xavier_uniform_: U(±√(6 / (fan_in + fan_out))). */
export function xavierUniform(p: Parameter, fanIn: number, fanOut: number, rng: Rng): void {
  uniform(p, Math.sqrt(6 / (fanIn + fanOut)), rng);
}
