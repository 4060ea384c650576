// The DenseNet description in one import: config and validation, presets, the layer list the
// executor walks, parameter / multiply-add counts and the printable layer table.
export * from './densenet_config.js';
export * from './presets.js';
export * from './architecture.js';
export * from './layer_table.js';
