// OpenCLIP's AttentionalPooler (vision_cfg.attentional_pool, from CoCa): learned queries attend
// over the image tokens with one nn.MultiheadAttention whose keys and values come from the token
// width (kdim = vdim = width) and whose queries live in the output width:
//   x = ln_k(tokens) [B, S, W];  q = ln_q(query) [Q, D];  out = MHA(q, x, x) [B, Q, D]
// nn.MultiheadAttention names its projections `in_proj_weight` [3D, D] when kdim = D and
// `q_proj_weight` [D, D], `k_proj_weight` / `v_proj_weight` [D, W] otherwise; the bias is always
// `in_proj_bias` [3D]. The projections and the attention run on the host (CPU backend) in double
// accumulations; the output projection is a Linear and the two LayerNorms are the native ones.
import type { Tensor } from '../tensor.js';
import type { Rng } from '../util/rng.js';
import { constant, normal, uniform } from './init.js';
import { LayerNorm } from './layernorm.js';
import { Linear } from './linear.js';
import { Module, Parameter } from './module.js';

/** A [rows, cols] block of a parameter (a slice of in_proj_weight, or a whole q/k/v weight). */
interface Block {
  param: Parameter;
  offset: number;
}

export class AttentionalPooler extends Module {
  readonly query: Parameter;
  readonly inProjWeight: Parameter | null;
  readonly qProjWeight: Parameter | null;
  readonly kProjWeight: Parameter | null;
  readonly vProjWeight: Parameter | null;
  readonly inProjBias: Parameter;
  readonly outProj: Linear;
  readonly lnQ: LayerNorm;
  readonly lnK: LayerNorm;
  readonly headDim: number;
  private saved: { xk: Tensor; qn: Tensor; qp: Float64Array; k: Float64Array; v: Float64Array; a: Float64Array; b: number; s: number } | null = null;

  constructor(prefix: string, readonly dModel: number, readonly contextDim: number, readonly heads: number, readonly queries: number, eps = 1e-5) {
    super();
    if (dModel % heads !== 0) throw new Error(`${prefix}: output width ${dModel} is not divisible by ${heads} attention-pooler heads`);
    this.headDim = dModel / heads;
    this.query = new Parameter(`${prefix}.query`, [queries, dModel]);
    const packed = contextDim === dModel;
    this.inProjWeight = packed ? new Parameter(`${prefix}.attn.in_proj_weight`, [3 * dModel, dModel]) : null;
    this.qProjWeight = packed ? null : new Parameter(`${prefix}.attn.q_proj_weight`, [dModel, dModel]);
    this.kProjWeight = packed ? null : new Parameter(`${prefix}.attn.k_proj_weight`, [dModel, contextDim]);
    this.vProjWeight = packed ? null : new Parameter(`${prefix}.attn.v_proj_weight`, [dModel, contextDim]);
    this.inProjBias = new Parameter(`${prefix}.attn.in_proj_bias`, [3 * dModel]);
    this.outProj = new Linear(`${prefix}.attn.out_proj`, dModel, dModel);
    this.lnQ = new LayerNorm(`${prefix}.ln_q`, dModel, eps);
    this.lnK = new LayerNorm(`${prefix}.ln_k`, contextDim, eps);
  }

  parameters(): Parameter[] {
    const proj = this.inProjWeight ? [this.inProjWeight] : [this.qProjWeight!, this.kProjWeight!, this.vProjWeight!];
    return [this.query, ...proj, this.inProjBias, ...this.outProj.parameters(), ...this.lnQ.parameters(), ...this.lnK.parameters()];
  }

  protected override children(): Module[] {
    return [this.outProj, this.lnQ, this.lnK];
  }

  /** torch.randn queries; nn.MultiheadAttention's own init (xavier_uniform projections, zero biases). */
  init(rng: Rng): void {
    normal(this.query, 1, rng);
    const d = this.dModel;
    if (this.inProjWeight) uniform(this.inProjWeight, Math.sqrt(6 / (d + 3 * d)), rng);
    else {
      uniform(this.qProjWeight!, Math.sqrt(6 / (2 * d)), rng);
      uniform(this.kProjWeight!, Math.sqrt(6 / (d + this.contextDim)), rng);
      uniform(this.vProjWeight!, Math.sqrt(6 / (d + this.contextDim)), rng);
    }
    constant(this.inProjBias, 0);
    this.outProj.initDefault(rng, true);
  }

  private block(which: 0 | 1 | 2): Block {
    if (this.inProjWeight) return { param: this.inProjWeight, offset: which * this.dModel * this.dModel };
    return { param: [this.qProjWeight!, this.kProjWeight!, this.vProjWeight!][which], offset: 0 };
  }

  /** y[r, :] = W·x[r, :] + bias over `rows` rows of width `cols` (W a [D, cols] block). */
  private project(x: Float32Array, rows: number, cols: number, which: 0 | 1 | 2): Float64Array {
    const d = this.dModel;
    const { param, offset } = this.block(which);
    const w = param.values();
    const bias = this.inProjBias.values();
    const y = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < d; o++) {
        let acc = bias[which * d + o];
        const wo = offset + o * cols;
        const xr = r * cols;
        for (let c = 0; c < cols; c++) acc += w[wo + c] * x[xr + c];
        y[r * d + o] = acc;
      }
    }
    return y;
  }

  /** Backward of `project`: adds dW and dbias, and adds W·dy into dx (rows × cols). */
  private projectBackward(x: Float32Array, dy: Float64Array, rows: number, cols: number, which: 0 | 1 | 2, dx: Float64Array): void {
    const d = this.dModel;
    const { param, offset } = this.block(which);
    const w = param.values();
    const dw = param.grad.view() as Float32Array;
    const db = this.inProjBias.grad.view() as Float32Array;
    const dwAcc = new Float64Array(d * cols);
    for (let o = 0; o < d; o++) {
      let dbAcc = 0;
      for (let r = 0; r < rows; r++) {
        const g = dy[r * d + o];
        if (g === 0) continue;
        dbAcc += g;
        const xr = r * cols;
        const wo = offset + o * cols;
        for (let c = 0; c < cols; c++) {
          dwAcc[o * cols + c] += g * x[xr + c];
          dx[xr + c] += g * w[wo + c];
        }
      }
      db[which * d + o] += dbAcc;
    }
    for (let i = 0; i < dwAcc.length; i++) dw[offset + i] += dwAcc[i];
  }

  /** tokens [B, S, W] → [B, Q, D]. */
  forward(tokens: Tensor): Tensor {
    const [b, s, w] = tokens.shape;
    if (w !== this.contextDim) throw new Error(`AttentionalPooler: tokens of width ${w}, expected ${this.contextDim}`);
    const { dModel: d, queries: nq, heads, headDim } = this;
    // Inference keeps no attention matrix: one row of it at a time is enough.
    const keep = this.retainForBackward();
    const xk = this.lnK.forward(tokens);
    const qn = this.lnQ.forward(this.query.data);
    const xs = xk.view() as Float32Array;
    const qp = this.project(qn.view() as Float32Array, nq, d, 0);
    const k = this.project(xs, b * s, w, 1);
    const v = this.project(xs, b * s, w, 2);
    const scale = 1 / Math.sqrt(headDim);
    const a = new Float64Array(keep ? b * heads * nq * s : s);
    const o = this.buffer('attn', [b, nq, d]);
    const os = o.view() as Float32Array;
    const row = new Float64Array(s);
    for (let bi = 0; bi < b; bi++) {
      for (let h = 0; h < heads; h++) {
        const e0 = h * headDim;
        for (let q = 0; q < nq; q++) {
          let max = -Infinity;
          for (let t = 0; t < s; t++) {
            let dot = 0;
            const kt = (bi * s + t) * d + e0;
            for (let e = 0; e < headDim; e++) dot += qp[q * d + e0 + e] * k[kt + e];
            row[t] = dot * scale;
            if (row[t] > max) max = row[t];
          }
          let sum = 0;
          for (let t = 0; t < s; t++) sum += (row[t] = Math.exp(row[t] - max));
          const base = keep ? ((bi * heads + h) * nq + q) * s : 0;
          for (let t = 0; t < s; t++) a[base + t] = row[t] / sum;
          for (let e = 0; e < headDim; e++) {
            let acc = 0;
            for (let t = 0; t < s; t++) acc += a[base + t] * v[(bi * s + t) * d + e0 + e];
            os[(bi * nq + q) * d + e0 + e] = acc;
          }
        }
      }
    }
    this.saved = keep ? { xk, qn, qp, k, v, a, b, s } : null;
    return this.outProj.forward(o);
  }

  /** dout [B, Q, D] → d tokens [B, S, W]; adds every parameter gradient. */
  backward(dout: Tensor): Tensor {
    this.assertBackwardAllowed(this.query.name);
    const sv = this.saved;
    if (!sv) throw new Error(`${this.query.name}: backward before forward`);
    const { xk, qn, qp, k, v, a, b, s } = sv;
    const { dModel: d, queries: nq, heads, headDim, contextDim: w } = this;
    const dO = (this.outProj.backward(dout) as Tensor).view() as Float32Array;
    const scale = 1 / Math.sqrt(headDim);
    const dqp = new Float64Array(nq * d);
    const dk = new Float64Array(b * s * d);
    const dv = new Float64Array(b * s * d);
    const dA = new Float64Array(s);
    for (let bi = 0; bi < b; bi++) {
      for (let h = 0; h < heads; h++) {
        const e0 = h * headDim;
        for (let q = 0; q < nq; q++) {
          const base = ((bi * heads + h) * nq + q) * s;
          const orow = (bi * nq + q) * d + e0;
          let dot = 0;
          for (let t = 0; t < s; t++) {
            let acc = 0;
            const vt = (bi * s + t) * d + e0;
            for (let e = 0; e < headDim; e++) {
              acc += dO[orow + e] * v[vt + e];
              dv[vt + e] += a[base + t] * dO[orow + e];
            }
            dA[t] = acc;
            dot += a[base + t] * acc;
          }
          for (let t = 0; t < s; t++) {
            const ds = a[base + t] * (dA[t] - dot) * scale;
            if (ds === 0) continue;
            const kt = (bi * s + t) * d + e0;
            for (let e = 0; e < headDim; e++) {
              dqp[q * d + e0 + e] += ds * k[kt + e];
              dk[kt + e] += ds * qp[q * d + e0 + e];
            }
          }
        }
      }
    }
    const dqn = new Float64Array(nq * d);
    this.projectBackward(qn.view() as Float32Array, dqp, nq, d, 0, dqn);
    const dxk = new Float64Array(b * s * w);
    const xs = xk.view() as Float32Array;
    this.projectBackward(xs, dk, b * s, w, 1, dxk);
    this.projectBackward(xs, dv, b * s, w, 2, dxk);
    const dqnT = this.buffer('dqn', [nq, d]);
    (dqnT.view() as Float32Array).set(dqn);
    const dquery = this.lnQ.backward(dqnT);
    const gq = this.query.grad.view() as Float32Array;
    const dqv = dquery.view() as Float32Array;
    for (let i = 0; i < gq.length; i++) gq[i] += dqv[i];
    const dxkT = this.buffer('dxk', [b, s, w]);
    (dxkT.view() as Float32Array).set(dxk);
    return this.lnK.backward(dxkT);
  }
}
