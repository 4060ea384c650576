// ONNX's wire format through protobufjs and the official schema (./onnx.proto, parsed at run time):
// typed plain objects for the part of ModelProto the exporter writes, encode to bytes, decode back.
//
// The schema's text is bundled into the build (esbuild's text loader, scripts/build.mjs), so the
// CLI, the bench bundle and the tests never look for the .proto on disk at run time: a packed or
// copied dist/ works wherever it lands, and the file itself ships in src/ (package.json "files").

import { endianness } from 'node:os';
import protobuf from 'protobufjs';
import ONNX_PROTO_TEXT from './onnx.proto';

/** TensorProto.DataType values used here. */
export const ONNX_FLOAT = 1;
/** AttributeProto.AttributeType values used here. */
export const ATTRIBUTE_FLOAT = 1;
export const ATTRIBUTE_INT = 2;
export const ATTRIBUTE_INTS = 7;

export interface OnnxAttribute { name: string; type: number; f?: number; i?: number; ints?: number[] }
export interface OnnxNode { name: string; op_type: string; input: string[]; output: string[]; attribute?: OnnxAttribute[]; domain?: string }
export interface OnnxTensor { name: string; dims: number[]; data_type: number; raw_data: Uint8Array }
/** A tensor dimension: fixed size, or a named symbolic one (`dim_param`, e.g. the batch). */
export type OnnxDim = { dim_value: number } | { dim_param: string };
export interface OnnxValueInfo { name: string; type: { tensor_type: { elem_type: number; shape: { dim: OnnxDim[] } } }; doc_string?: string }
export interface OnnxGraph { name: string; node: OnnxNode[]; initializer: OnnxTensor[]; input: OnnxValueInfo[]; output: OnnxValueInfo[]; doc_string?: string }
export interface OnnxModel {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  doc_string?: string;
  graph: OnnxGraph;
  metadata_props: { key: string; value: string }[];
}

let modelType: protobuf.Type | undefined;

/** onnx.ModelProto from the official schema (parsed once). */
function modelProto(): protobuf.Type {
  modelType ??= protobuf.parse(ONNX_PROTO_TEXT, { keepCase: true }).root.lookupType('onnx.ModelProto');
  return modelType;
}

/** Serialized ModelProto; throws when the object does not fit the schema (protobufjs's verify). */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const type = modelProto();
  const problem = type.verify(model);
  if (problem) throw new Error(`ONNX model does not fit onnx.ModelProto: ${problem}`);
  return type.encode(model).finish();
}

/** A ModelProto read back as a plain object (int64 as numbers, bytes as Uint8Array), e.g. for tests and for reading metadata. */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModel {
  const type = modelProto();
  return type.toObject(type.decode(bytes), { longs: Number, defaults: false, arrays: true }) as OnnxModel;
}

/** float32 values as little-endian bytes (ONNX raw_data is little-endian whatever the host). */
export function float32RawData(values: Float32Array): Uint8Array {
  if (endianness() === 'LE') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}
