// WGSL programs: a prelude generator (bindings, the uniform struct, index helpers), a pipeline
// cache keyed explicitly, and launches (pipeline + bind group + grid) that the executor records.
// A kernel's own WGSL is then only its arithmetic; shapes travel as uniforms, and pipelines are
// compiled asynchronously up front so that a compile error names the kernel instead of hanging.

import type { ArenaBuffer, BufferArena } from './arena.js';
import { foldWorkgroups, type WorkgroupGrid } from './dispatch.js';

export type ScalarType = 'u32' | 'i32' | 'f32';

export interface BindingSpec {
  name: string;
  access: 'read' | 'read_write';
  /** Element type of the storage array (default f32; vec4<f32> for a kernel's aligned vec4 view of an operand). */
  type?: 'f32' | 'u32' | 'vec4<f32>';
}

export interface ProgramSpec {
  /** Human name used in errors, e.g. `conv2d.backwardFilter`. */
  name: string;
  /** Cache key: everything that changes the WGSL text (tile sizes, variant flags). */
  key: string;
  bindings: BindingSpec[];
  uniforms: { name: string; type: ScalarType }[];
  workgroupSize: [number, number?, number?];
  /**
   * WGSL extensions the program uses (e.g. `subgroups`), written as `enable` directives before
   * everything else; the device must have the matching feature. Name them in `key` too.
   */
  enables?: string[];
  /** WGSL declarations after the prelude (helper functions, constants, workgroup arrays); may be empty. */
  body: string;
  /**
   * Statements of the entry point, which the prelude declares (in a block of its own, so they may
   * shadow these names). In scope: builtins `wid` (workgroup_id), `nwg` (num_workgroups), `lid`
   * (local_invocation_index); `group`, the workgroup's linear index in a grid folded by
   * foldWorkgroups(); and `index` = group·(invocations per workgroup) + lid.
   */
  main: string;
}

/** Everything a kernel can be given: a whole arena buffer, a raw GPU buffer, or a byte range of one. */
export type BufferLike = ArenaBuffer | GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

/*
 * Every storage binding is declared read_write, also the ones a kernel only reads (`access:
 * 'read'` documents intent). WebGPU forbids one buffer bound read-only and writable in the same
 * dispatch even for disjoint ranges, but allows several writable bindings of one buffer whose
 * ranges do not overlap; the memory planner packs many tensors into one buffer per category, so
 * a kernel routinely reads one range of a buffer and writes another (measured on Dawn 0.6.2).
 */
export function preludeFor(spec: ProgramSpec): string {
  const lines: string[] = (spec.enables ?? []).map((e) => `enable ${e};`);
  spec.bindings.forEach((b, i) => {
    const type = b.type ?? 'f32';
    lines.push(`@group(0) @binding(${i}) var<storage, read_write> ${b.name}: array<${type}>;`);
  });
  if (spec.uniforms.length > 0) {
    lines.push('struct Uniforms {');
    for (const u of spec.uniforms) lines.push(`  ${u.name}: ${u.type},`);
    lines.push('};');
    lines.push(`@group(0) @binding(${spec.bindings.length}) var<uniform> u: Uniforms;`);
  }
  const [x, y = 1, z = 1] = spec.workgroupSize;
  lines.push(`const WG_X: u32 = ${x}u;`, `const WG_Y: u32 = ${y}u;`, `const WG_Z: u32 = ${z}u;`);
  lines.push('// Linear workgroup index of a grid folded by foldWorkgroups().');
  lines.push('fn workgroupIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + nwg.x * (wid.y + nwg.y * wid.z); }');
  // The one entry point; WGSL resolves module-scope names in any order, so `main` may use what the body declares.
  lines.push('@compute @workgroup_size(WG_X, WG_Y, WG_Z)');
  lines.push('fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {');
  lines.push('  let group = workgroupIndex(wid, nwg);', '  let index = group * (WG_X * WG_Y * WG_Z) + lid;');
  lines.push('  {', spec.main, '  }', '}');
  return lines.join('\n') + '\n';
}

export class KernelError extends Error {}

export interface CompiledProgram {
  readonly spec: ProgramSpec;
  readonly pipeline: GPUComputePipeline;
}

export class PipelineCache {
  private readonly compiled = new Map<string, Promise<CompiledProgram>>();
  private created = 0;

  constructor(private readonly device: GPUDevice) {}

  /** Number of pipelines actually created (cache misses); lets tests assert no compiles after step 1. */
  get pipelinesCreated(): number { return this.created; }

  compile(spec: ProgramSpec): Promise<CompiledProgram> {
    const key = `${spec.name}|${spec.key}`;
    let entry = this.compiled.get(key);
    if (!entry) {
      entry = this.build(spec);
      this.compiled.set(key, entry);
      entry.catch(() => this.compiled.delete(key));
    }
    return entry;
  }

  private async build(spec: ProgramSpec): Promise<CompiledProgram> {
    const pipeline = await createPipeline(this.device, spec);
    this.created++;
    return { spec, pipeline };
  }
}

/**
 * Creates the compute pipeline of `spec` on `device` (the WGSL is the prelude + body, the layout
 * one group of storage bindings and the uniforms). A compile error names the kernel and the line.
 * The same spec on two devices of one adapter gives the same driver shader, which is what lets
 * warm-up compile on helper devices (warmup.ts).
 */
export async function createPipeline(device: GPUDevice, spec: ProgramSpec): Promise<GPUComputePipeline> {
  const code = preludeFor(spec) + spec.body;
  // The scope keeps a bad shader from also surfacing as an uncaptured error on the console.
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: spec.name, code });
  const scoped = device.popErrorScope();
  const info = await module.getCompilationInfo();
  await scoped;
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0) {
    const where = errors.map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}\n    ${code.split('\n')[m.lineNum - 1] ?? ''}`);
    throw new KernelError(`kernel "${spec.name}" (${spec.key}) failed to compile:\n${where.join('\n')}`);
  }
  try {
    const entries: GPUBindGroupLayoutEntry[] = spec.bindings.map((b, i) => ({
      binding: i, visibility: 0x4 /* COMPUTE */,
      buffer: { type: 'storage' }, // see preludeFor
    }));
    if (spec.uniforms.length > 0) {
      entries.push({ binding: spec.bindings.length, visibility: 0x4, buffer: { type: 'uniform' } });
    }
    const bindGroupLayout = device.createBindGroupLayout({ label: spec.name, entries });
    const layout = device.createPipelineLayout({ label: spec.name, bindGroupLayouts: [bindGroupLayout] });
    return await device.createComputePipelineAsync({ label: spec.name, layout, compute: { module, entryPoint: 'main' } });
  } catch (e) {
    throw new KernelError(`kernel "${spec.name}" (${spec.key}): pipeline creation failed: ${(e as Error).message}`);
  }
}

/** Bytes of the uniform block of `spec` (createLaunch writes this many; at least 16). */
export function uniformBytes(spec: ProgramSpec): number {
  return Math.max(16, Math.ceil(spec.uniforms.length / 4) * 16);
}

/** One recorded dispatch. Owns its uniform buffer; `destroy()` returns it to the arena. */
export class Launch {
  private destroyed = false;
  constructor(
    readonly program: CompiledProgram,
    readonly bindGroup: GPUBindGroup,
    readonly grid: WorkgroupGrid,
    private readonly uniformBuffer: ArenaBuffer | undefined,
    private readonly uniformData: ArrayBuffer,
    private readonly arena: BufferArena,
  ) {}

  get name(): string { return this.program.spec.name; }

  /** Rewrites some uniforms (e.g. the optimizer's step count); takes effect at the next submit. */
  setUniforms(queue: GPUQueue, values: Record<string, number>): void {
    if (!this.uniformBuffer) throw new KernelError(`kernel "${this.name}" has no uniforms`);
    writeUniforms(this.program.spec, this.uniformData, values, this.name);
    queue.writeBuffer(this.uniformBuffer.buffer, 0, this.uniformData);
  }

  encode(pass: GPUComputePassEncoder): void {
    if (this.destroyed) throw new KernelError(`kernel "${this.name}": launch used after destroy()`);
    if (this.grid[0] * this.grid[1] * this.grid[2] === 0) return;
    pass.setPipeline(this.program.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(this.grid[0], this.grid[1], this.grid[2]);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.uniformBuffer) this.arena.free(this.uniformBuffer);
  }
}

function writeUniforms(spec: ProgramSpec, data: ArrayBuffer, values: Record<string, number>, name: string): void {
  const view = new DataView(data);
  for (const [key, value] of Object.entries(values)) {
    const index = spec.uniforms.findIndex((u) => u.name === key);
    if (index < 0) throw new KernelError(`kernel "${name}": unknown uniform "${key}"`);
    const type = spec.uniforms[index].type;
    if (!Number.isFinite(value)) throw new KernelError(`kernel "${name}": uniform "${key}" is ${value}`);
    if (type === 'f32') view.setFloat32(index * 4, value, true);
    else if (type === 'u32') {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new KernelError(`kernel "${name}": uniform "${key}" = ${value} is not a u32`);
      view.setUint32(index * 4, value, true);
    } else {
      if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw new KernelError(`kernel "${name}": uniform "${key}" = ${value} is not an i32`);
      view.setInt32(index * 4, value, true);
    }
  }
}

function asBinding(b: BufferLike): GPUBufferBinding {
  if ('category' in b) return { buffer: b.buffer };
  if ('offset' in b && 'size' in b && 'buffer' in b) return { buffer: b.buffer, offset: b.offset, size: b.size };
  return { buffer: b as GPUBuffer };
}

/**
 * Builds a launch of `program` over `workgroups` (folded into a legal grid), binding the
 * buffers by the program's binding names and writing every uniform once.
 */
export function createLaunch(
  device: GPUDevice, arena: BufferArena, program: CompiledProgram,
  buffers: Record<string, BufferLike>, uniforms: Record<string, number>, workgroups: number,
): Launch {
  const spec = program.spec;
  const entries: GPUBindGroupEntry[] = spec.bindings.map((b, i) => {
    const buffer = buffers[b.name];
    if (!buffer) throw new KernelError(`kernel "${spec.name}": no buffer given for binding "${b.name}"`);
    return { binding: i, resource: asBinding(buffer) };
  });
  for (const name of Object.keys(buffers)) {
    if (!spec.bindings.some((b) => b.name === name)) throw new KernelError(`kernel "${spec.name}": unknown binding "${name}"`);
  }
  const missing = spec.uniforms.filter((u) => !(u.name in uniforms)).map((u) => u.name);
  if (missing.length > 0) throw new KernelError(`kernel "${spec.name}": uniforms not set: ${missing.join(', ')}`);
  const data = new ArrayBuffer(uniformBytes(spec));
  let uniformBuffer: ArenaBuffer | undefined;
  if (spec.uniforms.length > 0) {
    writeUniforms(spec, data, uniforms, spec.name);
    uniformBuffer = arena.allocate(`${spec.name}.uniforms`, 'uniforms', data.byteLength, 0x40 | 0x08 /* UNIFORM | COPY_DST */);
    device.queue.writeBuffer(uniformBuffer.buffer, 0, data);
    entries.push({ binding: spec.bindings.length, resource: { buffer: uniformBuffer.buffer } });
  }
  const limit = device.limits.maxComputeWorkgroupsPerDimension;
  const bindGroup = device.createBindGroup({ label: spec.name, layout: program.pipeline.getBindGroupLayout(0), entries });
  return new Launch(program, bindGroup, foldWorkgroups(workgroups, limit), uniformBuffer, data, arena);
}
