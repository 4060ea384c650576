// densenet-wgsl command line. Each command declares its flags; unknown ones are errors.
import './threadpool.js';
import { ADAPTER_FLAGS, adapterOptions, formatFlags, parseFlags, UsageError, type FlagSpec } from './args.js';
import { BENCH_COMMANDS } from './bench_commands.js';
import { reportError } from './errors.js';
import { runInfo } from './info.js';
import { EXPORT_FLAGS, runExport } from './export.js';
import { FEATURES_FLAGS, PREDICT_FLAGS, runFeatures, runPredictDispatch } from './imagenet.js';
import { EVAL_FLAGS, runEval } from './eval.js';
import { runTrain, TRAIN_FLAGS } from './train.js';
import { runTune, TUNE_COMMAND_FLAGS } from './tune.js';
import type { ParsedFlags } from './args.js';

interface Command {
  summary: string;
  flags: FlagSpec[];
  /** Positional arguments the command takes (e.g. image files); others are refused. */
  positional?: string;
  run(flags: Record<string, unknown>, positional: string[], given: Set<string>): Promise<void>;
}

const commands: Record<string, Command> = {
  train: {
    summary: 'train a DenseNet (default: the digits preset on the built-in MNIST digits)',
    flags: TRAIN_FLAGS,
    run: (flags, _positional, given) => runTrain(flags as ParsedFlags, given),
  },
  eval: {
    summary: 'top-1/top-5, per-class accuracy and confusion matrix of a checkpoint (its test set or a folder) or of ImageNet weights on a val folder',
    flags: EVAL_FLAGS,
    run: (flags, _positional, given) => runEval(flags as ParsedFlags, given),
  },
  predict: {
    summary: 'top-5 classes of PNG/JPEG/WebP images: --checkpoint (trained here) or --weights (torchvision ImageNet safetensors)',
    flags: PREDICT_FLAGS,
    positional: 'IMAGE...',
    run: (flags, positional, given) => runPredictDispatch(flags as ParsedFlags, positional, given),
  },
  features: {
    summary: 'pooled DenseNet feature vectors of PNG/JPEG/WebP images (torchvision weights) to .npy or .json',
    flags: FEATURES_FLAGS,
    positional: 'IMAGE...',
    run: (flags, positional) => runFeatures(flags as ParsedFlags, positional),
  },
  export: {
    summary: 'a checkpoint as torchvision-named safetensors (PyTorch load_state_dict), or a checkpoint or safetensors weights as an ONNX inference graph (by the --out extension)',
    flags: EXPORT_FLAGS,
    run: (flags) => runExport(flags as ParsedFlags),
  },
  tune: {
    summary: 'time candidate launch choices (conv tiles, split-K, pool blocks) for every kernel shape of a model on this adapter; cache the winners',
    flags: TUNE_COMMAND_FLAGS,
    run: (flags) => runTune(flags as ParsedFlags),
  },
  info: {
    summary: 'print the WebGPU adapter and run a GPU smoke check',
    flags: ADAPTER_FLAGS,
    run: (flags) => runInfo(adapterOptions(flags as never)),
  },
  summary: {
    summary: 'layer table, parameters, multiply-adds and planned memory per strategy of a preset',
    flags: [
      { name: 'model', type: 'string', help: 'preset name, e.g. densenet-bc-100-12, densenet121, digits-small' },
      { name: 'batch', type: 'number', help: 'batch size for shapes and memory', default: 64 },
      { name: 'memory', type: 'string', help: 'one strategy only: naive, shared, recompute or fused' },
      { name: 'freeze', type: 'string', help: 'plan a fine-tuning step: none (default) or features (only the classifier trains)', default: 'none' },
    ],
    run: async (flags) => { const { runSummary } = await import('./summary.js'); runSummary(flags); },
  },
  ...BENCH_COMMANDS,
};

function usage(): string {
  const lines = ['usage: densenet-wgsl <command> [flags]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) {
    lines.push(`  ${name.padEnd(12)} ${c.summary}`, formatFlags(c.flags).replace(/^/gm, '    '));
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(usage());
    return argv.length === 0 ? 1 : 0;
  }
  const two = `${argv[0]} ${argv[1] ?? ''}`;
  const name = commands[two] ? two : argv[0];
  const command = commands[name];
  if (!command) {
    const group = Object.keys(commands).filter((c) => c.startsWith(`${argv[0]} `));
    const hint = group.length ? `; "${argv[0]}" takes: ${group.map((g) => g.split(' ')[1]).join(', ')}` : '';
    throw new UsageError(`unknown command "${argv.slice(0, 2).join(' ').trim()}"${hint}. Run "densenet-wgsl --help" for the list.`);
  }
  const rest = argv.slice(name.split(' ').length);
  if (rest.includes('--help')) { console.log(`densenet-wgsl ${name}: ${command.summary}\n${formatFlags(command.flags)}`); return 0; }
  const { flags, positional, given } = parseFlags(name, rest, command.flags);
  if (positional.length > 0 && !command.positional) throw new UsageError(`${name}: unexpected argument "${positional[0]}"`);
  await command.run(flags, positional, given);
  return 0;
}

main(process.argv.slice(2)).then(
  // A command may have set its own exit code (train: 130 after Ctrl-C, 1 after a NaN stop): keep it.
  (code) => { process.exitCode ??= code; },
  (error: unknown) => { process.exitCode = reportError(error); },
);
