// `train --weights FILE.safetensors`: reads torchvision-named weights for fine-tuning and checks
// them against the model before any GPU work (src/train does not read weight files; io does, and
// the CLI hands train() this reader). Every layer but the classifier comes from the file; the
// classifier is new (sized for the dataset), unless --keep-classifier asks for the file's.

import { describeDenseNet, PRESETS, type DenseNetConfig } from '../models/index.js';
import { readSafetensors, SafetensorsError, type SafetensorsContents } from '../io/safetensors.js';
import { configFromWeights, matchTorchvisionWeights, WeightsError } from '../io/torchvision.js';
import type { FineTuneWeights } from '../train/trainer.js';

/** A reader for train()'s hooks.readWeights: `path`'s tensors for `config`, or a WeightsError/SafetensorsError naming each problem. */
export function fineTuneWeightsReader(path: string) {
  return async (config: DenseNetConfig, keepClassifier: boolean): Promise<FineTuneWeights> => {
    let contents: SafetensorsContents;
    try {
      contents = await readSafetensors(path);
    } catch (e) {
      if (e instanceof SafetensorsError) throw new SafetensorsError(`train: --weights: ${e.message}`, { cause: e });
      throw e;
    }
    // Without --keep-classifier the model is matched as a feature extractor: the file's classifier
    // (any size, or none) is skipped, and every other tensor must be there with the model's shape.
    const target: DenseNetConfig = keepClassifier ? config : { ...config, classes: null };
    try {
      const { values, report } = matchTorchvisionWeights(describeDenseNet(target), contents, path,
        keepClassifier ? {} : { ignore: (n) => n.startsWith('classifier.') });
      const converted = Object.entries(report.converted).map(([d, n]) => `${n} ${d}`).join(', ');
      const head = keepClassifier
        ? `the file's classifier kept (${config.classes} classes)`
        : `a new classifier for ${config.classes} classes (initialised as a new model's)`;
      return {
        values,
        summary: `fine-tuning from ${path}: ${report.loaded} tensors loaded (every layer but the classifier${keepClassifier ? ', and the classifier' : ''})` +
          `${converted ? `, converted to float32: ${converted}` : ''}; ${head}`,
      };
    } catch (e) {
      if (!(e instanceof WeightsError)) throw e;
      // The hint goes right after the first line, before the list of tensors (which can be long).
      const [first, ...list] = `train: ${e.message.replace(/^weights /, '--weights ')}`.split('\n');
      const hinted = first.replace(/(; nothing was loaded:)?$/, (end) => `${hint(contents, config, keepClassifier, e.problems)}${end}`);
      throw new WeightsError([hinted, ...list].join('\n'), e.problems);
    }
  };
}

/** What to do: the model the file is for (our exports record it; torchvision's are recognised), or the classifier flag. */
function hint(contents: SafetensorsContents, config: DenseNetConfig, keepClassifier: boolean, problems: string[]): string {
  if (keepClassifier && problems.every((p) => / classifier\./.test(p))) {
    return `; the file's classifier does not fit ${config.classes} classes: drop --keep-classifier to train a new one`;
  }
  const found = configFromWeights(contents);
  if (!found || found.name === config.name) return '';
  const preset = Object.hasOwn(PRESETS, found.name) ? ` (pass --model ${found.name})` : ' (pass --model with a JSON config of that architecture)';
  return `; the file holds weights for model "${found.name}"${preset}`;
}
