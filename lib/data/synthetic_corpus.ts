// The captions the synthetic world's vocabulary is trained on: both caption styles and
// every zero-shot prompt, so all of the world's words are whole tokens.
import { SyntheticWorld, ZERO_SHOT_TASKS } from './synthetic.js';

export function* syntheticCorpus(samplesPerStyle: number, seed = 0): Generator<string> {
  for (const captions of ['precise', 'noisy'] as const) {
    const world = new SyntheticWorld({ seed, size: samplesPerStyle, captions, imageSize: 8 });
    for (let i = 0; i < samplesPerStyle; i++) yield world.caption(i);
  }
  const world = new SyntheticWorld({ seed, imageSize: 8 });
  for (const name of ZERO_SHOT_TASKS) {
    const task = world.zeroShotTask(name, 1);
    for (const t of task.templates) for (const c of task.classnames) yield t.replace('{c}', c);
  }
  const retrieval = world.retrievalSet(200, 0, 7);
  yield* retrieval.captions;
}
