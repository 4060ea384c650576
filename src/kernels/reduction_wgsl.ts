// WGSL reductions shared by the GPU-class kernels (softmax cross-entropy by rows, global average
// pool, batch norm's split reduction): a whole-workgroup reduction and a segmented one (several independent sums per workgroup),
// each with a subgroup version and a barrier-tree version. The subgroup versions assume nothing
// about which invocations form a subgroup or its size, so they are correct on any adapter.

export type ReduceOp = 'add' | 'max' | 'min';
/** vec2<f32> reduces componentwise (batch norm sums two quantities at once). */
export type ReduceType = 'f32' | 'u32' | 'vec2<f32>';

const combine = (op: ReduceOp, a: string, b: string) => (op === 'add' ? `${a} + ${b}` : `${op}(${a}, ${b})`);
const subgroupFn = (op: ReduceOp) => ({ add: 'subgroupAdd', max: 'subgroupMax', min: 'subgroupMin' })[op];

/**
 * `fn name(v: T, lid: u32) -> T`: v combined over the whole workgroup, returned to every invocation
 * (call it in uniform control flow; each function owns its workgroup array, so calls need no
 * barrier between them). Without subgroups: a tree in workgroup memory, log2(WG_X) barriers
 * (WG_X a power of two). With them: each subgroup reduces itself; every lane writes its
 * subgroup's result to its slot (max/min are idempotent; for add, only the subgroup's first lane
 * writes it and the others 0), and after one barrier each subgroup folds all slots, lanes
 * striding over them, and reduces again.
 */
export function workgroupReduce(name: string, type: ReduceType, op: ReduceOp, subgroups: boolean): string {
  const slots = `${name}Slots`;
  if (!subgroups) {
    return `
var<workgroup> ${slots}: array<${type}, WG_X>;
fn ${name}(v: ${type}, lid: u32) -> ${type} {
  ${slots}[lid] = v;
  for (var stride = WG_X / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) { ${slots}[lid] = ${combine(op, `${slots}[lid]`, `${slots}[lid + stride]`)}; }
  }
  workgroupBarrier();
  let r = ${slots}[0];
  // Every invocation has read slot 0 before a later call may reuse this array.
  workgroupBarrier();
  return r;
}`;
  }
  const sg = subgroupFn(op);
  const mine = op === 'add' ? `select(${type}(0), r, subgroupExclusiveAdd(1u) == 0u)` : 'r';
  return `
var<workgroup> ${slots}: array<${type}, WG_X>;
fn ${name}(v: ${type}, lid: u32) -> ${type} {
  let r = ${sg}(v);
  let lane = subgroupExclusiveAdd(1u);
  let size = subgroupAdd(1u);
  ${slots}[lid] = ${mine};
  workgroupBarrier();
  var part = ${slots}[lane];
  for (var j = lane + size; j < WG_X; j += size) { part = ${combine(op, 'part', `${slots}[j]`)}; }
  let total = ${sg}(part);
  workgroupBarrier();
  return total;
}`;
}

/**
 * `fn name(v: f32, lid: u32) -> f32`: the sum of v over the `lanes` consecutive invocations
 * [lid − lid % lanes, … + lanes) (a segment; WG_X / lanes segments per workgroup, lanes a power of
 * two dividing WG_X), returned to the segment's first invocation (others get an unspecified
 * value). Call in uniform control flow.
 *
 * Without subgroups: a tree over the segment, log2(lanes) barriers. With them, correct whatever
 * invocations form a subgroup: each subgroup sums each segment it holds (one segment per round,
 * the smallest left; WG_X / lanes rounds bound the segments one subgroup can hold), the first lane
 * of each (subgroup, segment) pair writes that partial to its slot and the others 0, and after one
 * barrier the segment's first invocation adds its segment's slots (where subgroups are contiguous
 * and at least `lanes` wide, which is the usual case, one of them is nonzero).
 */
export function segmentedSum(name: string, lanes: number, subgroups: boolean): string {
  const slots = `${name}Slots`;
  if (!subgroups) {
    return `
var<workgroup> ${slots}: array<f32, WG_X>;
fn ${name}(v: f32, lid: u32) -> f32 {
  ${slots}[lid] = v;
  let within = lid % ${lanes}u;
  for (var stride = ${lanes / 2}u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (within < stride) { ${slots}[lid] += ${slots}[lid + stride]; }
  }
  workgroupBarrier();
  let r = ${slots}[lid];
  workgroupBarrier();
  return r;
}`;
  }
  return `
var<workgroup> ${slots}: array<f32, WG_X>;
fn ${name}(v: f32, lid: u32) -> f32 {
  let segment = lid / ${lanes}u;
  var pending = true;
  var partial = 0.0;
  for (var round = 0u; round < WG_X / ${lanes}u; round++) {
    let current = subgroupMin(select(0xffffffffu, segment, pending));
    let member = pending && segment == current;
    let s = subgroupAdd(select(0.0, v, member));
    let first = subgroupMin(select(0xffffffffu, lid, member));
    if (member) {
      partial = select(0.0, s, lid == first);
      pending = false;
    }
  }
  ${slots}[lid] = partial;
  workgroupBarrier();
  var total = 0.0;
  if (lid % ${lanes}u == 0u) {
    for (var j = 0u; j < ${lanes}u; j++) { total += ${slots}[lid + j]; }
  }
  workgroupBarrier();
  return total;
}`;
}
