// Imported first by the CLI: sharp decodes images on libuv's thread pool, which Node sizes to 4
// threads unless UV_THREADPOOL_SIZE says otherwise when the pool first starts. A folder dataset
// wants as many images in flight as there are cores, so the pool is sized to the machine here
// (a value the user set is kept).
import { availableParallelism } from 'node:os';

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, Math.min(64, availableParallelism())));
