/**
 * Fused scaled-dot-product attention, FlashAttention-2 style: forward, backward and their CPU references.
 *
 * Layout (f32): q [BH, Lq, D], k [BH, Lk, D], v [BH, Lk, Dv], out [BH, Lq, Dv], lse [BH, Lq], where BH is batch·heads,
 * either contiguous or tokens-major ([B, L, H·D], as the projections write them: attention-layout.ts), the grads laid
 * out as their tensors. Scores are S = scale·q·kᵀ with scale = 1/√D by default;
 * `causal` keeps keys j ≤ i (PyTorch's top-left alignment; CLIP's text encoder has Lq = Lk).
 *
 * Forward: a workgroup owns BQ query rows of one head and streams K and V through workgroup memory in tiles of BK
 * keys, keeping each row's running max and sum (online softmax). Memory is O(L·D): the Lq×Lk scores never exist.
 * It also writes lse = log Σ_j exp(S_ij), from which the backward recomputes P = exp(S − lse) tile by tile.
 *
 * Backward: WGSL has no float atomics, so FlashAttention-2's atomic dQ accumulation is replaced by two kernels that
 * each own what they write: one per key block computes dK and dV looping over all query blocks, one per query block
 * computes dQ looping over key blocks. Both recompute P and dP = dO·Vᵀ (two extra tile matmuls), in exchange for no
 * atomics and no Lq×Lk scratch. A first small kernel writes delta_i = Σ dO_i·O_i into a caller-provided scratch buffer.
 *
 * Threads: each thread owns 4 rows of its workgroup's block (query rows; key rows in the dK/dV kernel) and shares them
 * with TPR − 1 others. Against the streamed tile it computes the scores of its 4 rows with rows t, t+TPR, t+2·TPR, …
 * (one vec4 per streamed row, a component per owned row), and it accumulates the columns 4t…4t+3, 4(t+TPR)…, … of its
 * rows' outputs. Tiles live in workgroup memory as vec4s and each load feeds 4–16 multiply-adds. On lavapipe that is
 * what counts (a workgroup-memory load was measured at 15–40 times the cost of an 8-lane FMA: it is gathered lane by
 * lane); on GPUs it is the usual register-blocking win.
 */
import { LAYOUT_UNIFORMS, layoutUniforms, ROW_STARTS, type AttentionLayout } from "./attention-layout.ts";
import { rowwiseAttention, rowwiseAttentionBackward } from "./attention-rowwise.ts";
import { defineKernel } from "./kernel.ts";
import { FOLDED_INDEX, type KernelRunner } from "./runner.ts";

/** Block sizes: BQ query rows, BK key rows, TPR threads sharing each group of 4 owned rows. */
export type AttentionBlocks = { bq: number; bk: number; tpr: number };
/** Everything baked into a kernel's WGSL. */
export type AttentionSpec = AttentionBlocks & { d: number; dv: number; causal: boolean };

export interface AttentionOptions {
  bh: number;
  lq: number;
  lk: number;
  d: number;
  dv: number;
  /** Defaults to 1/√d. */
  scale?: number;
  causal?: boolean;
  /** Splits bh into (batch, head) for the layout; defaults to 1. */
  heads?: number;
  /** How q, k, v, out and their grads are laid out; defaults to "headsMajor" ([BH, L, n] contiguous). */
  layout?: AttentionLayout;
}
export interface AttentionBackwardOptions extends AttentionOptions {
  /** Scratch of at least bh·lq floats for delta_i = Σ dO_i·O_i; its contents are overwritten. */
  delta: GPUBuffer;
}

/** The three tiled kernels; the delta kernel needs no blocks. */
export type AttentionKernel = "forward" | "gradQ" | "gradKV";

const MAX_HEAD_DIM = 160; // a thread keeps 4·⌈D/4/TPR⌉ vec4 accumulators in registers; SD's largest head is 160
/** [owned rows, streamed rows] per workgroup, preferred first: bigger owned blocks reload the streamed side less often. */
const CANDIDATES = [
  [128, 32],
  [64, 32],
  [64, 16],
  [32, 16],
  [32, 8],
  [16, 8],
  [8, 8],
  [4, 8],
] as const;

const vec4s = (n: number) => Math.ceil(n / 4);

/** Workgroup-memory bytes of each kernel (see its `var<workgroup>` declarations). */
export const attentionWorkgroupBytes: Record<AttentionKernel, (s: Omit<AttentionSpec, "causal">) => number> = {
  forward: ({ bq, bk, tpr, d, dv }) =>
    16 * (bq * vec4s(d) + bk * Math.max(vec4s(d), vec4s(dv)) + (bk * bq) / 4 + (bq / 2) * tpr),
  gradQ: ({ bq, bk, d, dv }) => 16 * ((bq + bk) * (vec4s(d) + vec4s(dv)) + (bk * bq) / 4),
  gradKV: ({ bq, bk, d, dv }) => 16 * ((bq + bk) * (vec4s(d) + vec4s(dv)) + (bq * bk) / 2) + 8 * bq,
};

/**
 * Blocks for one kernel on this adapter. TPR is the largest of 8, 4, 2, 1 that splits the accumulated columns (in
 * vec4s) evenly, so no thread idles; then the largest candidate blocks that fit the workgroup-memory limit.
 */
export function attentionBlocks(
  kernel: AttentionKernel,
  d: number,
  dv: number,
  limits: Record<string, number>,
): AttentionBlocks {
  const cols = { forward: [dv], gradQ: [d], gradKV: [d, dv] }[kernel];
  const tpr = [8, 4, 2, 1].find((t) => cols.every((n) => vec4s(n) % t === 0))!;
  const bytes = limits.maxComputeWorkgroupStorageSize ?? 16384;
  const threads = limits.maxComputeInvocationsPerWorkgroup ?? 256;
  for (const [owned, streamed] of CANDIDATES) {
    const b = kernel === "gradKV" ? { bq: streamed, bk: owned, tpr } : { bq: owned, bk: streamed, tpr };
    if (attentionWorkgroupBytes[kernel]({ ...b, d, dv }) <= bytes && (owned / 4) * tpr <= threads) return b;
  }
  throw new Error(
    `attention: head dims d=${d}, dv=${dv} need more than this adapter's ${bytes} bytes of workgroup memory`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// WGSL pieces

/** Finite stand-in for −∞: exp(NEG − m) underflows to 0 without ever forming −∞ − (−∞) = NaN. */
const NEG = "-1e30";

/**
 * Straight-line copies of `body(c)`. Per-thread arrays (scores, accumulators) are only ever indexed by constants so
 * that compilers keep them in registers: one dynamic index sends the whole array to memory.
 */
const unroll = (n: number, body: (c: number) => string) => Array.from({ length: n }, (_, c) => body(c)).join("\n    ");

/** A [rows, n] input is read as vec4s when n allows it. */
const rowsOf = (n: number) => (n % 4 === 0 ? "vec4<f32>" : "f32");
const byD = (s: AttentionSpec) => rowsOf(s.d);
const byDv = (s: AttentionSpec) => rowsOf(s.dv);

/**
 * The loader `<name>4(start, c4)` of an input whose rows hold n floats: floats 4·c4 … 4·c4+3 of the row starting at
 * float `start`, zero past n. Rows of n % 4 = 0 floats start at multiples of 4 in every layout, so they load as vec4s.
 */
const input = (name: string, n: number) =>
  n % 4 === 0
    ? `
  fn ${name}4(start: u32, c4: u32) -> vec4<f32> { return ${name}[start / 4u + c4]; }`
    : `
  fn ${name}4(start: u32, c4: u32) -> vec4<f32> {
    var x = vec4<f32>();
    for (var i = 0u; i < 4u; i++) { if (c4 * 4u + i < ${n}u) { x[i] = ${name}[start + c4 * 4u + i]; } }
    return x;
  }`;

/** `<name>Store(start, c4, x)` for an output whose rows hold n floats: writes the components of x inside the row. */
const output = (name: string, n: number) => `
  fn ${name}Store(start: u32, c4: u32, x: vec4<f32>) {
    for (var i = 0u; i < 4u; i++) { if (c4 * 4u + i < ${n}u) { ${name}[start + c4 * 4u + i] = x[i]; } }
  }`;

/**
 * Fills the tile `dst` ([cap, n4] vec4s) from the rows of `src` starting at float `start`, `stride` floats apart,
 * zeroing the rows from `rows` on.
 */
const loadTile = (
  dst: string,
  src: string,
  [start, stride]: [string, string],
  rows: string,
  cap: number,
  n4: number,
  threads: number,
  scale = "",
) => `
    for (var e = lid; e < ${cap * n4}u; e += ${threads}u) {
      let row = e / ${n4}u;
      if (row < ${rows}) { ${dst}[e] = ${src}4(${start} + row * ${stride}, e % ${n4}u)${scale}; } else { ${dst}[e] = vec4<f32>(); }
    }`;

/** Rows `first`, `first` + 1, … of head bh of tensor `t` (q, k, v or o) for `loadTile`. */
const rowsFrom = (t: "q" | "k" | "v" | "o", first: string): [string, string] => [
  `${t}Row(bh, ${first})`,
  `p.${t}Token`,
];

/** acc[c] += the thread's 4 rows of `a` (from row `aRow`) dotted with row t + c·TPR of `b`, a component per `a` row. */
const scores = (acc: string, a: string, aRow: string, b: string, n4: number, count: number, tpr: number) => `
    for (var e = 0u; e < ${n4}u; e++) {
      ${unroll(4, (r) => `let a${r} = ${a}[(${aRow} + ${r}u) * ${n4}u + e];`)}
      ${unroll(count, (c) => `{ let b = ${b}[(t + ${c * tpr}u) * ${n4}u + e]; ${acc}[${c}] += vec4<f32>(dot(a0, b), dot(a1, b), dot(a2, b), dot(a3, b)); }`)}
    }`;

/** One outer-product step: acc[r·nc + c] += w[r] · x[j, t + c·TPR] for the thread's 4 rows r and column vec4s c. */
const accumulate = (acc: string, w: string, x: string, j: string, n4: number, tpr: number) => {
  const nc = Math.ceil(n4 / tpr);
  return unroll(nc, (c) => {
    const step = `{ let x = ${x}[${j} * ${n4}u + t + ${c * tpr}u]; ${unroll(4, (r) => `${acc}[${r * nc + c}] += ${w}[${r}] * x;`)} }`;
    return (c + 1) * tpr > n4 ? `if (t + ${c * tpr}u < ${n4}u) ${step}` : step;
  });
};

/** Writes acc[r·nc + c]·factor(r) through `<name>Store` for the thread's rows r where `valid(r)`. */
const store = (
  name: string,
  acc: string,
  row: (r: number) => string,
  valid: (r: number) => string,
  n4: number,
  tpr: number,
  factor: (r: number) => string,
) => {
  const nc = Math.ceil(n4 / tpr);
  return unroll(
    4,
    (r) =>
      `if (${valid(r)}) { ${unroll(nc, (c) => `${name}Store(${row(r)}, t + ${c * tpr}u, ${acc}[${r * nc + c}]${factor(r)});`)} }`,
  );
};

function check({ bq, bk, tpr, d, dv }: AttentionSpec, owned: number, streamed: number) {
  if (owned % 4 || streamed % tpr)
    throw new Error(
      `attention: the owned block (${owned}) must be a multiple of 4 and the streamed one (${streamed}) of TPR=${tpr} (bq=${bq}, bk=${bk})`,
    );
  if (d < 1 || dv < 1 || d > MAX_HEAD_DIM || dv > MAX_HEAD_DIM)
    throw new Error(`attention: head dims d=${d}, dv=${dv} must lie in 1..${MAX_HEAD_DIM}`);
}

const UNIFORMS = { lq: "u32", lk: "u32", scale: "f32", ...LAYOUT_UNIFORMS } as const;

/** Forward; grid [⌈Lq/BQ⌉, BH]. */
export const attentionForwardKernel = defineKernel({
  name: "attentionForward",
  inputs: { q: byD, k: byD, v: byDv },
  outputs: { out: "f32", lse: "f32" },
  uniforms: UNIFORMS,
  body: (s: AttentionSpec) => {
    check(s, s.bq, s.bk);
    const { bq, bk, tpr, d, dv, causal } = s,
      d4 = vec4s(d),
      dv4 = vec4s(dv),
      threads = (bq / 4) * tpr,
      nb = bk / tpr;
    const masked = (j: string) => `vec4<bool>(${j} >= kRows)${causal ? ` | (vec4<u32>(k0 + ${j}) > rows)` : ""}`;
    return /* wgsl */ `${ROW_STARTS}${input("q", d)}${input("k", d)}${input("v", dv)}${output("out", dv)}
  var<workgroup> qs: array<vec4<f32>, ${bq * d4}>;              // scale·Q block
  var<workgroup> kv: array<vec4<f32>, ${bk * Math.max(d4, dv4)}>; // K tile, then V tile (K is dead once the scores exist)
  var<workgroup> ps: array<vec4<f32>, ${(bk * bq) / 4}>;          // [key, row group]: exp(S − m) of the group's 4 rows
  var<workgroup> partMax: array<vec4<f32>, ${threads}>;
  var<workgroup> partSum: array<vec4<f32>, ${threads}>;

  @compute @workgroup_size(${threads})
  fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let bh = wid.y; let q0 = wid.x * ${bq}u;
    let g = lid / ${tpr}u; let t = lid % ${tpr}u;
    let rows = q0 + 4u * g + vec4<u32>(0u, 1u, 2u, 3u);
    ${loadTile("qs", "q", rowsFrom("q", "q0"), `min(${bq}u, p.lq - q0)`, bq, d4, threads, " * p.scale")}
    var m = vec4<f32>(${NEG});
    var l = vec4<f32>();
    var acc = array<vec4<f32>, ${4 * Math.ceil(dv4 / tpr)}>();
    let kEnd = ${causal ? `min(p.lk, q0 + ${bq}u)` : "p.lk"};
    for (var k0 = 0u; k0 < kEnd; k0 += ${bk}u) {
      let kRows = min(${bk}u, p.lk - k0);
      workgroupBarrier(); // the previous tile's readers are done with kv, ps and the partials
      ${loadTile("kv", "k", rowsFrom("k", "k0"), "kRows", bk, d4, threads)}
      workgroupBarrier();
      // The explicit initializer matters: through Dawn on lavapipe, a loop-local var declared without one keeps the
      // previous iteration's value instead of restarting at zero.
      var s = array<vec4<f32>, ${nb}>();
      ${scores("s", "qs", "4u * g", "kv", d4, nb, tpr)}
      var mt = vec4<f32>(${NEG});
      ${unroll(nb, (c) => `s[${c}] = select(s[${c}], vec4<f32>(${NEG}), ${masked(`t + ${c * tpr}u`)}); mt = max(mt, s[${c}]);`)}
      partMax[lid] = mt;
      workgroupBarrier();
      var mNew = m;
      for (var i = 0u; i < ${tpr}u; i++) { mNew = max(mNew, partMax[g * ${tpr}u + i]); }
      var sum = vec4<f32>();
      ${unroll(nb, (c) => `s[${c}] = exp(s[${c}] - mNew); ps[(t + ${c * tpr}u) * ${bq / 4}u + g] = s[${c}]; sum += s[${c}];`)}
      partSum[lid] = sum;
      ${loadTile("kv", "v", rowsFrom("v", "k0"), "kRows", bk, dv4, threads)}
      workgroupBarrier();
      let alpha = exp(m - mNew);
      m = mNew;
      l *= alpha;
      for (var i = 0u; i < ${tpr}u; i++) { l += partSum[g * ${tpr}u + i]; }
      ${unroll(4 * Math.ceil(dv4 / tpr), (i) => `acc[${i}] *= alpha[${Math.floor(i / Math.ceil(dv4 / tpr))}];`)}
      for (var j = 0u; j < kRows; j++) {
        let w = ps[j * ${bq / 4}u + g];
        ${accumulate("acc", "w", "kv", "j", dv4, tpr)}
      }
    }
    ${store(
      "out",
      "acc",
      (r) => `oRow(bh, rows[${r}])`,
      (r) => `rows[${r}] < p.lq`,
      dv4,
      tpr,
      (r) => ` / l[${r}]`,
    )}
    if (t == 0u) {
      for (var r = 0u; r < 4u; r++) { if (rows[r] < p.lq) { lse[bh * p.lq + rows[r]] = m[r] + log(l[r]); } }
    }
  }`;
  },
});

/** delta_i = Σ_e dO_ie·O_ie over bh·lq rows (i = bh·Lq + l; out and gradOut in the call's layout). */
export const attentionDeltaKernel = defineKernel({
  name: "attentionDelta",
  inputs: { out: "f32", gradOut: "f32" },
  outputs: { delta: "f32" },
  uniforms: { rows: "u32", lq: "u32", ...LAYOUT_UNIFORMS },
  body: ({ dv }: { dv: number }) => /* wgsl */ `
  ${FOLDED_INDEX}${ROW_STARTS}
  @compute @workgroup_size(256)
  fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = foldedIndex(wid, nwg) * 256u + lid;
    if (i >= p.rows) { return; }
    let start = oRow(i / p.lq, i % p.lq);
    var sum = 0.0;
    for (var e = 0u; e < ${dv}u; e++) { sum += out[start + e] * gradOut[start + e]; }
    delta[i] = sum;
  }`,
});

const BACKWARD_INPUTS = { q: byD, k: byD, v: byDv, gradOut: byDv, lse: "f32", delta: "f32" } as const;
const backwardLoaders = (d: number, dv: number) =>
  `${ROW_STARTS}${input("q", d)}${input("k", d)}${input("v", dv)}${input("gradOut", dv)}`;

/** dQ = scale·dS·K, one workgroup per query block looping over key tiles; grid [⌈Lq/BQ⌉, BH]. */
export const attentionGradQKernel = defineKernel({
  name: "attentionGradQ",
  inputs: BACKWARD_INPUTS,
  outputs: { gradQ: "f32" },
  uniforms: UNIFORMS,
  body: (s: AttentionSpec) => {
    check(s, s.bq, s.bk);
    const { bq, bk, tpr, d, dv, causal } = s,
      d4 = vec4s(d),
      dv4 = vec4s(dv),
      threads = (bq / 4) * tpr,
      nb = bk / tpr;
    const masked = (j: string) => `vec4<bool>(${j} >= kRows)${causal ? ` | (vec4<u32>(k0 + ${j}) > rows)` : ""}`;
    return /* wgsl */ `${backwardLoaders(d, dv)}${output("gradQ", d)}
  var<workgroup> qs: array<vec4<f32>, ${bq * d4}>; // scale·Q block
  var<workgroup> dos: array<vec4<f32>, ${bq * dv4}>;
  var<workgroup> ks: array<vec4<f32>, ${bk * d4}>;
  var<workgroup> vs: array<vec4<f32>, ${bk * dv4}>;
  var<workgroup> dss: array<vec4<f32>, ${(bk * bq) / 4}>; // [key, row group]: dS = P∘(dP − delta)

  @compute @workgroup_size(${threads})
  fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let bh = wid.y; let q0 = wid.x * ${bq}u;
    let g = lid / ${tpr}u; let t = lid % ${tpr}u;
    let rows = q0 + 4u * g + vec4<u32>(0u, 1u, 2u, 3u);
    let qRows = min(${bq}u, p.lq - q0);
    ${loadTile("qs", "q", rowsFrom("q", "q0"), "qRows", bq, d4, threads, " * p.scale")}
    ${loadTile("dos", "gradOut", rowsFrom("o", "q0"), "qRows", bq, dv4, threads)}
    // Padding rows (≥ Lq) read the last row's statistics; nothing of them is written.
    let stat = bh * p.lq + min(rows, vec4<u32>(p.lq - 1u));
    let lseRows = vec4<f32>(lse[stat.x], lse[stat.y], lse[stat.z], lse[stat.w]);
    let deltaRows = vec4<f32>(delta[stat.x], delta[stat.y], delta[stat.z], delta[stat.w]);
    var dQ = array<vec4<f32>, ${4 * Math.ceil(d4 / tpr)}>();
    let kEnd = ${causal ? `min(p.lk, q0 + ${bq}u)` : "p.lk"};
    for (var k0 = 0u; k0 < kEnd; k0 += ${bk}u) {
      let kRows = min(${bk}u, p.lk - k0);
      workgroupBarrier(); // the previous tile's readers are done with ks, vs and dss
      ${loadTile("ks", "k", rowsFrom("k", "k0"), "kRows", bk, d4, threads)}
      ${loadTile("vs", "v", rowsFrom("v", "k0"), "kRows", bk, dv4, threads)}
      workgroupBarrier();
      var s = array<vec4<f32>, ${nb}>();
      var dp = array<vec4<f32>, ${nb}>();
      ${scores("s", "qs", "4u * g", "ks", d4, nb, tpr)}
      ${scores("dp", "dos", "4u * g", "vs", dv4, nb, tpr)}
      ${unroll(nb, (c) => `dss[(t + ${c * tpr}u) * ${bq / 4}u + g] = select(exp(s[${c}] - lseRows), vec4<f32>(), ${masked(`t + ${c * tpr}u`)}) * (dp[${c}] - deltaRows);`)}
      workgroupBarrier();
      for (var j = 0u; j < kRows; j++) {
        let w = dss[j * ${bq / 4}u + g];
        ${accumulate("dQ", "w", "ks", "j", d4, tpr)}
      }
    }
    ${store(
      "gradQ",
      "dQ",
      (r) => `qRow(bh, rows[${r}])`,
      (r) => `rows[${r}] < p.lq`,
      d4,
      tpr,
      () => " * p.scale",
    )}
  }`;
  },
});

/**
 * dV = Pᵀ·dO and dK = scale·dSᵀ·Q, one workgroup per key block looping over query tiles; grid [⌈Lk/BK⌉, BH].
 * Here a thread's 4 rows are keys and the streamed rows are queries.
 */
export const attentionGradKVKernel = defineKernel({
  name: "attentionGradKV",
  inputs: BACKWARD_INPUTS,
  outputs: { gradK: "f32", gradV: "f32" },
  uniforms: UNIFORMS,
  body: (s: AttentionSpec) => {
    check(s, s.bk, s.bq);
    const { bq, bk, tpr, d, dv, causal } = s,
      d4 = vec4s(d),
      dv4 = vec4s(dv),
      threads = (bk / 4) * tpr,
      nb = bq / tpr;
    const masked = (i: string) => `vec4<bool>(${i} >= qRows)${causal ? ` | (keys > vec4<u32>(q0 + ${i}))` : ""}`;
    return /* wgsl */ `${backwardLoaders(d, dv)}${output("gradK", d)}${output("gradV", dv)}
  var<workgroup> ks: array<vec4<f32>, ${bk * d4}>; // scale·K block
  var<workgroup> vs: array<vec4<f32>, ${bk * dv4}>;
  var<workgroup> qs: array<vec4<f32>, ${bq * d4}>;
  var<workgroup> dos: array<vec4<f32>, ${bq * dv4}>;
  var<workgroup> ps: array<vec4<f32>, ${(bq * bk) / 4}>;  // [query, key group]: P
  var<workgroup> dss: array<vec4<f32>, ${(bq * bk) / 4}>; // [query, key group]: dS = P∘(dP − delta)
  var<workgroup> lses: array<f32, ${bq}>;
  var<workgroup> deltas: array<f32, ${bq}>;

  @compute @workgroup_size(${threads})
  fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let bh = wid.y; let k0 = wid.x * ${bk}u;
    let g = lid / ${tpr}u; let t = lid % ${tpr}u;
    let keys = k0 + 4u * g + vec4<u32>(0u, 1u, 2u, 3u);
    ${loadTile("ks", "k", rowsFrom("k", "k0"), `min(${bk}u, p.lk - k0)`, bk, d4, threads, " * p.scale")}
    ${loadTile("vs", "v", rowsFrom("v", "k0"), `min(${bk}u, p.lk - k0)`, bk, dv4, threads)}
    var dK = array<vec4<f32>, ${4 * Math.ceil(d4 / tpr)}>();
    var dV = array<vec4<f32>, ${4 * Math.ceil(dv4 / tpr)}>();
    // Under the causal mask, query blocks that end before this key block see none of it.
    for (var q0 = ${causal ? `k0 / ${bq}u * ${bq}u` : "0u"}; q0 < p.lq; q0 += ${bq}u) {
      let qRows = min(${bq}u, p.lq - q0);
      workgroupBarrier(); // the previous tile's readers are done with qs, dos, ps, dss and the statistics
      ${loadTile("qs", "q", rowsFrom("q", "q0"), "qRows", bq, d4, threads)}
      ${loadTile("dos", "gradOut", rowsFrom("o", "q0"), "qRows", bq, dv4, threads)}
      for (var e = lid; e < ${bq}u; e += ${threads}u) {
        let i = bh * p.lq + q0 + min(e, qRows - 1u); // padding queries are masked below
        lses[e] = lse[i]; deltas[e] = delta[i];
      }
      workgroupBarrier();
      var s = array<vec4<f32>, ${nb}>();
      var dp = array<vec4<f32>, ${nb}>();
      ${scores("s", "ks", "4u * g", "qs", d4, nb, tpr)}
      ${scores("dp", "vs", "4u * g", "dos", dv4, nb, tpr)}
      ${unroll(nb, (c) => {
        const i = `${c * tpr}u + t`;
        return `s[${c}] = select(exp(s[${c}] - lses[${i}]), vec4<f32>(), ${masked(`(${i})`)}); ps[(${i}) * ${bk / 4}u + g] = s[${c}]; dss[(${i}) * ${bk / 4}u + g] = s[${c}] * (dp[${c}] - deltas[${i}]);`;
      })}
      workgroupBarrier();
      for (var i = 0u; i < qRows; i++) {
        let wp = ps[i * ${bk / 4}u + g];
        let wds = dss[i * ${bk / 4}u + g];
        ${accumulate("dV", "wp", "dos", "i", dv4, tpr)}
        ${accumulate("dK", "wds", "qs", "i", d4, tpr)}
      }
    }
    // Padding keys (≥ Lk) were computed on zero rows; nothing of them is written.
    ${store(
      "gradK",
      "dK",
      (r) => `kRow(bh, keys[${r}])`,
      (r) => `keys[${r}] < p.lk`,
      d4,
      tpr,
      () => " * p.scale",
    )}
    ${store(
      "gradV",
      "dV",
      (r) => `vRow(bh, keys[${r}])`,
      (r) => `keys[${r}] < p.lk`,
      dv4,
      tpr,
      () => "",
    )}
  }`;
  },
});

// ---------------------------------------------------------------------------------------------------------------
// Launchers

function resolve(o: AttentionOptions) {
  const { bh, lq, lk, d, dv } = o;
  if (![bh, lq, lk, d, dv].every((n) => Number.isInteger(n) && n >= 1))
    throw new Error(`attention: bh, lq, lk, d, dv must be positive integers (got ${bh}, ${lq}, ${lk}, ${d}, ${dv})`);
  return { scale: o.scale ?? 1 / Math.sqrt(d), causal: o.causal ?? false, layout: layoutUniforms(o) };
}

function spec(r: KernelRunner, kernel: AttentionKernel, o: AttentionOptions, causal: boolean): AttentionSpec {
  return { ...attentionBlocks(kernel, o.d, o.dv, r.limits), d: o.d, dv: o.dv, causal };
}

/** out = softmax(scale·q·kᵀ [+ causal mask])·v, and lse per query row. */
export function attention(
  r: KernelRunner,
  q: GPUBuffer,
  k: GPUBuffer,
  v: GPUBuffer,
  out: GPUBuffer,
  lse: GPUBuffer,
  o: AttentionOptions,
): void {
  const { scale, causal, layout } = resolve(o);
  if (r.cpu) return rowwiseAttention(r, q, k, v, out, lse, { ...o, scale, causal, layout });
  const s = spec(r, "forward", o, causal);
  attentionForwardKernel.run(r, s, {
    buffers: { q, k, v, out, lse },
    uniforms: { lq: o.lq, lk: o.lk, scale, ...layout },
    workgroups: [Math.ceil(o.lq / s.bq), o.bh, 1],
  });
}

/** Gradients of `attention` with respect to q, k and v, given its out and lse and the incoming gradOut. */
export function attentionBackward(
  r: KernelRunner,
  q: GPUBuffer,
  k: GPUBuffer,
  v: GPUBuffer,
  out: GPUBuffer,
  gradOut: GPUBuffer,
  lse: GPUBuffer,
  gradQ: GPUBuffer,
  gradK: GPUBuffer,
  gradV: GPUBuffer,
  o: AttentionBackwardOptions,
): void {
  const { scale, causal, layout } = resolve(o);
  const rows = o.bh * o.lq;
  attentionDeltaKernel.run(
    r,
    { dv: o.dv },
    {
      buffers: { out, gradOut, delta: o.delta },
      uniforms: { rows, lq: o.lq, ...layout },
      workgroups: Math.ceil(rows / 256),
    },
  );
  if (r.cpu)
    return rowwiseAttentionBackward(r, [q, k, v, gradOut, lse, o.delta], gradQ, gradK, gradV, {
      ...o,
      scale,
      causal,
      layout,
    });
  const inputs = { q, k, v, gradOut, lse, delta: o.delta },
    uniforms = { lq: o.lq, lk: o.lk, scale, ...layout };
  const kv = spec(r, "gradKV", o, causal);
  attentionGradKVKernel.run(r, kv, {
    buffers: { ...inputs, gradK, gradV },
    uniforms,
    workgroups: [Math.ceil(o.lk / kv.bk), o.bh, 1],
  });
  const gq = spec(r, "gradQ", o, causal);
  attentionGradQKernel.run(r, gq, {
    buffers: { ...inputs, gradQ },
    uniforms,
    workgroups: [Math.ceil(o.lq / gq.bq), o.bh, 1],
  });
}

// ---------------------------------------------------------------------------------------------------------------
// CPU references: plain loops in float64, on headsMajor (contiguous) tensors

function contiguousOnly(o: AttentionOptions) {
  if ((o.layout ?? "headsMajor") !== "headsMajor")
    throw new Error(`attention CPU reference: takes headsMajor tensors only (got layout "${o.layout}")`);
}

/** Scaled scores of one query row against all keys, −∞ where masked. */
function rowScores(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  b: number,
  i: number,
  o: AttentionOptions,
  scale: number,
  causal: boolean,
): Float64Array {
  const { lq, lk, d } = o,
    s = new Float64Array(lk);
  for (let j = 0; j < lk; j++) {
    let dot = 0;
    for (let e = 0; e < d; e++) dot += q[(b * lq + i) * d + e]! * k[(b * lk + j) * d + e]!;
    s[j] = causal && j > i ? -Infinity : scale * dot;
  }
  return s;
}

/** Softmax probabilities of a row of scores, and their log-sum-exp. */
function softmax(s: Float64Array): { p: Float64Array; lse: number } {
  const m = Math.max(...s);
  let sum = 0;
  for (const x of s) sum += Math.exp(x - m);
  return { p: s.map((x) => Math.exp(x - m) / sum), lse: m + Math.log(sum) };
}

export function attentionCpu(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  o: AttentionOptions,
): { out: Float64Array; lse: Float64Array } {
  contiguousOnly(o);
  const { scale, causal } = resolve(o);
  const { bh, lq, lk, dv } = o;
  const out = new Float64Array(bh * lq * dv),
    lse = new Float64Array(bh * lq);
  for (let b = 0; b < bh; b++) {
    for (let i = 0; i < lq; i++) {
      const sm = softmax(rowScores(q, k, b, i, o, scale, causal));
      lse[b * lq + i] = sm.lse;
      for (let j = 0; j < lk; j++) {
        for (let e = 0; e < dv; e++) out[(b * lq + i) * dv + e] += sm.p[j]! * v[(b * lk + j) * dv + e]!;
      }
    }
  }
  return { out, lse };
}

export function attentionBackwardCpu(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  gradOut: ArrayLike<number>,
  o: AttentionOptions,
): { gradQ: Float64Array; gradK: Float64Array; gradV: Float64Array } {
  contiguousOnly(o);
  const { scale, causal } = resolve(o);
  const { bh, lq, lk, d, dv } = o;
  const gradQ = new Float64Array(bh * lq * d),
    gradK = new Float64Array(bh * lk * d),
    gradV = new Float64Array(bh * lk * dv);
  for (let b = 0; b < bh; b++) {
    for (let i = 0; i < lq; i++) {
      const { p } = softmax(rowScores(q, k, b, i, o, scale, causal));
      const dO = (e: number) => gradOut[(b * lq + i) * dv + e]!;
      // dP_ij = dO_i·V_j; dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij'), the softmax Jacobian applied to dP.
      const dp = new Float64Array(lk);
      for (let j = 0; j < lk; j++) for (let e = 0; e < dv; e++) dp[j] += dO(e) * v[(b * lk + j) * dv + e]!;
      let delta = 0;
      for (let j = 0; j < lk; j++) delta += p[j]! * dp[j]!;
      for (let j = 0; j < lk; j++) {
        const ds = p[j]! * (dp[j]! - delta);
        for (let e = 0; e < dv; e++) gradV[(b * lk + j) * dv + e] += p[j]! * dO(e);
        for (let e = 0; e < d; e++) {
          gradQ[(b * lq + i) * d + e] += scale * ds * k[(b * lk + j) * d + e]!;
          gradK[(b * lk + j) * d + e] += scale * ds * q[(b * lq + i) * d + e]!;
        }
      }
    }
  }
  return { gradQ, gradK, gradV };
}
