// Keeps Dawn's own console lines off the user's terminal. Dawn (npm `webgpu` 0.6.2) prints
// "Warning: maxDynamic{Uniform,Storage}BuffersPerPipelineLayout artificially reduced…" with
// fprintf(stderr) while it discovers adapters (Limits.cpp clamps what the Vulkan driver reports:
// lavapipe says 1,000,000), whatever limits we request, and it has no switch to turn it off. The
// only place to stop it is file descriptor 2 during that synchronous call.

import { closeSync, constants, openSync, readlinkSync } from 'node:fs';
import { isatty } from 'node:tty';

/** True when DENSENET_WGSL_VERBOSE asks for Dawn's internal messages (1, true, yes). */
export function verboseFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes)$/i.test(env.DENSENET_WGSL_VERBOSE ?? '');
}

/**
 * Runs `fn` (synchronous native code) with fd 2 pointed at /dev/null, then points fd 2 back at
 * the same terminal or pipe. Node cannot dup(2), so fd 2 is closed and reopened through
 * /proc/self/fd (open() takes the lowest free number). That is exact only for a terminal or a
 * pipe (no file offset to keep); for a file or a socket (e.g. a parent's spawn pipe) `fn` runs
 * with stderr untouched, and Dawn's lines go there.
 */
export function withNativeStderrMuted<T>(fn: () => T): T {
  let saved: number;
  try {
    // readlink, not fstat: an fstat of a pipe leaves Node's shared stat buffer saying "FIFO", and
    // the next require.resolve then stops resolving symlinks (seen with node_modules a symlink).
    if (!(readlinkSync('/proc/self/fd/2').startsWith('pipe:') || isatty(2))) return fn();
    readlinkSync('/proc/self/fd/0'); // both lower descriptors must be open, or the reopen would not land on 2
    readlinkSync('/proc/self/fd/1');
    saved = openSync('/proc/self/fd/2', constants.O_WRONLY | constants.O_NOCTTY);
  } catch {
    return fn();
  }
  closeSync(2);
  const muted = openSync('/dev/null', constants.O_WRONLY);
  try {
    return fn();
  } finally {
    closeSync(muted);
    const restored = openSync(`/proc/self/fd/${saved}`, constants.O_WRONLY | constants.O_NOCTTY);
    closeSync(saved);
    // Another thread opening a file in the instant fd 2 was free would take the slot: say so
    // rather than write the engine's messages into the wrong file.
    if (muted !== 2 || restored !== 2) throw new Error(`gpu: could not restore stderr (descriptors ${muted}, ${restored}); set DENSENET_WGSL_VERBOSE=1 to skip muting Dawn's warnings`);
  }
}
