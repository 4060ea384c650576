// Registers TensorFlow.js's gradient functions at run time, for the training benchmark's tf.variableGrads.
//
// tfjs-core's Node entry (dist/tf-core.node.js) registers no gradients; they live in the package's
// ES-module tree (dist/register_all_gradients.js and the op files it imports), which Node cannot load
// as shipped: the files use ES `import` in a package without "type": "module", and their relative
// specifiers have no extension. Tests import that file and let esbuild bundle it, but the benchmarks'
// bundle must not: bundling it makes dist/bench.js import tfjs's dependencies ("long") when loaded, so
// every `bench` command would fail without the dev dependencies. Instead, only when a benchmark needs gradients, we add a
// module-loader hook (node:module register) that loads exactly that directory as ES modules and
// appends ".js" to its extensionless relative imports, then import the file. The op copies it
// brings register into tfjs's global gradient registry, which the Node entry reads.

import { createRequire, register } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TfCore from '@tensorflow/tfjs-core';

let loading: Promise<void> | undefined;

/** Makes sure tf.grads works for the kernels a DenseNet uses (Conv2D, FusedBatchNorm, ...). */
export function ensureTfjsGradients(tf: typeof TfCore): Promise<void> {
  if (tf.getGradient('Conv2D') && tf.getGradient('FusedBatchNorm')) return Promise.resolve();
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    const dist = pathToFileURL(`${dirname(require.resolve('@tensorflow/tfjs-core/package.json'))}/dist/`).href;
    const hooks = `
const DIST = ${JSON.stringify(dist)};
export async function resolve(specifier, context, next) {
  if (context.parentURL?.startsWith(DIST) && specifier.startsWith('.') && !specifier.endsWith('.js')) return next(specifier + '.js', context);
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (url.startsWith(DIST) && !url.endsWith('.node.js')) return next(url, { ...context, format: 'module' });
  return next(url, context);
}`;
    register(`data:text/javascript,${encodeURIComponent(hooks)}`);
    // A computed specifier, so that esbuild leaves this import to Node at run time.
    const entry = `${dist}register_all_gradients.js`;
    await import(entry);
  })();
  return loading.then(() => {
    if (!tf.getGradient('Conv2D')) throw new Error('tfjs gradients did not register (the tfjs-core copy they loaded uses another registry)');
  });
}
