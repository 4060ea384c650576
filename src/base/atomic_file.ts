// Atomic file writes: a crash or a failed write never leaves a half-written file where a good one
// was. Used by checkpoints and metrics (src/train) and safetensors (src/io), so it lives below both.
//
// The file-system operations go through a small interface so tests can inject failures (a full
// disk, a failed rename) that a root-owned test machine cannot provoke with permissions.

import { dirname, open, randomBytes, rename, rm } from './host.js';

export interface WritableFile {
  write(bytes: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface AtomicFileSystem {
  /** Creates a new file (failing if it exists) for writing. */
  create(path: string): Promise<WritableFile>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** fsyncs a directory so a rename in it survives a power cut. */
  syncDirectory(path: string): Promise<void>;
}

export const nodeFileSystem: AtomicFileSystem = {
  async create(path) {
    const handle = await open(path, 'wx', 0o644);
    return {
      async write(bytes) {
        // FileHandle.write may write fewer bytes than asked; loop until all are down.
        for (let done = 0; done < bytes.length;) {
          const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
          done += bytesWritten;
        }
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  },
  rename: (from, to) => rename(from, to),
  remove: (path) => rm(path, { force: true }),
  async syncDirectory(path) {
    let handle;
    try {
      handle = await open(path, 'r');
      await handle.sync();
    } catch (e) {
      // Some platforms (Windows, some network file systems) cannot fsync a directory.
      const code = (e as NodeJS.ErrnoException).code;
      if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF', 'ENOTSUP'].includes(code ?? '')) throw e;
    } finally {
      await handle?.close();
    }
  },
};

/**
 * Writes `chunks` to `path` atomically: into `${path}.tmp-<pid>-<random>`, fsynced, renamed over
 * `path`, then the directory fsynced. On any error (including one thrown by the chunk iterator)
 * the temporary file is removed and an existing `path` is left untouched.
 */
export async function writeFileAtomic(
  path: string,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  fileSystem: AtomicFileSystem = nodeFileSystem,
): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let file: WritableFile | undefined;
  let created = false;
  try {
    file = await fileSystem.create(temp);
    created = true;
    for await (const chunk of chunks) await file.write(chunk);
    await file.sync();
    const closing = file;
    file = undefined;
    await closing.close();
    await fileSystem.rename(temp, path);
    created = false;
  } catch (e) {
    if (file) await file.close().catch(() => undefined);
    if (created) await fileSystem.remove(temp).catch(() => undefined);
    throw e;
  }
  await fileSystem.syncDirectory(dirname(path));
}
