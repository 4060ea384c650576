// densenet-wgsl command line (commands are added as the engine grows).
import { formatAdapter, openDevice } from '../gpu/device.js';

const gpu = await openDevice();
console.log(formatAdapter(gpu.adapter));
gpu.close();
