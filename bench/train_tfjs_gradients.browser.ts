// The browser side of train_tfjs_gradients.ts (swapped in through package.json "browser"): a page
// bundle carries tfjs-core's ES modules, so its gradient registrations are simply bundled in.

import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import type * as TfCore from '@tensorflow/tfjs-core';

/** The gradients registered above; refuses where the bundle got another copy of tfjs-core. */
export function ensureTfjsGradients(tf: typeof TfCore): Promise<void> {
  if (tf.getGradient('Conv2D') && tf.getGradient('FusedBatchNorm')) return Promise.resolve();
  return Promise.reject(new Error('tfjs gradients are not registered in this page (two copies of @tensorflow/tfjs-core in the bundle?)'));
}
