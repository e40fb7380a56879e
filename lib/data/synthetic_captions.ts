// Captions for synthetic scenes: 'precise' ones say everything that is true in one fixed
// grammar; 'noisy' ones read like web alt-text: attributes dropped or wrong, word order
// loose, distractor words, odd casing, and now and then nothing about the image at all.
// Two more are built to favour different tasks, as the paper's datasets do (LAION favours
// retrieval, OpenAI's WIT classification): 'labels' name each object's colour and shape like
// a class label and nothing of the layout, but for a few (1%) that describe the whole scene, as
// some of WIT's alt-texts do; 'web' describe the whole scene (sizes, places, relations, counts)
// in varied wording, but name the shape unreliably.
import { COLOURS, type Colour, type Shape } from './synthetic_draw.js';
import type { Relation, SceneAttributes } from './synthetic_scene.js';
import { Rng } from './rng.js';

export type CaptionStyle = 'precise' | 'noisy' | 'labels' | 'web';
export const CAPTION_STYLES: readonly CaptionStyle[] = ['precise', 'noisy', 'labels', 'web'];

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five'];

export function plural(shape: Shape): string {
  return shape === 'cross' ? 'crosses' : shape + 's';
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

function withArticle(phrase: string): string {
  return `${article(phrase)} ${phrase}`;
}

const INVERSE: Record<Relation, Relation> = { 'left of': 'right of', 'right of': 'left of', above: 'below', below: 'above' };

/** The canonical description, without a final full stop. */
export function describe(scene: SceneAttributes): string {
  const [a, b] = scene.objects;
  switch (scene.kind) {
    case 'single':
      return `${withArticle(`${scene.size} ${a.colour} ${a.shape}`)} ${scene.position}`;
    case 'pair':
      return `${withArticle(`${a.colour} ${a.shape}`)} ${scene.relation} ${withArticle(`${b.colour} ${b.shape}`)}`;
    case 'count':
      return `${NUMBER_WORDS[scene.count]} ${a.colour} ${plural(a.shape)}`;
  }
}

/** The precise caption of a scene. */
export function preciseCaption(scene: SceneAttributes): string {
  return describe(scene) + '.';
}

/**
 * `k` different correct captions of one scene (for retrieval sets): the canonical one, then
 * rephrasings (for a pair, also the relation seen from the other object).
 */
export function paraphrases(scene: SceneAttributes, k: number): string[] {
  const d = describe(scene);
  const [a, b] = scene.objects;
  const out = [`${d}.`, `there is ${d}.`, `a picture of ${d}.`, `an image showing ${d}.`];
  if (scene.kind === 'single') out.push(`${scene.position}, ${withArticle(`${scene.size} ${a.colour} ${a.shape}`)}.`);
  else if (scene.kind === 'pair') out.push(`${withArticle(`${b.colour} ${b.shape}`)} ${INVERSE[scene.relation!]} ${withArticle(`${a.colour} ${a.shape}`)}.`);
  else out.push(`${a.colour} ${plural(a.shape)}, ${NUMBER_WORDS[scene.count]} of them.`);
  out.push(`a simple drawing of ${d}.`, `a photo of ${d}.`);
  if (k > out.length) throw new Error(`paraphrases: at most ${out.length} captions per image, asked for ${k}`);
  return out.slice(0, k);
}

const DISTRACTORS = [
  'stock photo', 'free download', 'hd', 'wallpaper', 'vector', 'clipart', 'png', 'icon', 'illustration',
  'logo', 'image', 'pic', 'jpg', 'best', 'new', 'cheap', '4k', 'background', 'design', 'pattern', 'art',
  'template', 'shop now', 'sale', 'royalty free', 'isolated', 'simple', 'flat', 'abstract', 'graphic',
  'set', 'shape', 'symbol', 'sign', 'cute', 'modern', 'minimal', 'color', 'poster', 'print',
];
const CONFUSED: Record<Shape, Shape> = {
  circle: 'ring', ring: 'circle', square: 'diamond', diamond: 'square', hexagon: 'circle',
  star: 'cross', cross: 'star', triangle: 'diamond',
};

function noisyObject(shape: Shape, colour: Colour, rng: Rng): string[] {
  const words: string[] = [];
  if (!rng.chance(0.2)) words.push(rng.chance(0.15) ? rng.pick(COLOURS) : colour);
  if (!rng.chance(0.1)) words.push(rng.chance(0.1) ? CONFUSED[shape] : shape);
  if (words.length === 0) words.push(shape);
  return rng.chance(0.15) ? words.reverse() : words;
}

/** An alt-text-like caption: true in the main, wrong or missing in parts. */
export function noisyCaption(scene: SceneAttributes, rng: Rng): string {
  const [a, b] = scene.objects;
  let words: string[] = [];
  if (rng.chance(0.05)) {
    words = []; // nothing about the image, only the distractors below
  } else if (scene.kind === 'single') {
    if (rng.chance(0.4)) words.push(scene.size!);
    words.push(...noisyObject(a.shape, a.colour, rng));
    if (rng.chance(0.3)) words.push(...scene.position!.split(' '));
  } else if (scene.kind === 'pair') {
    words.push(...noisyObject(a.shape, a.colour, rng));
    if (rng.chance(0.5)) {
      words.push(rng.chance(0.4) ? scene.relation! : 'and');
      words.push(...noisyObject(b.shape, b.colour, rng));
    }
  } else {
    const n = rng.chance(0.2) ? 2 + rng.int(3) : scene.count;
    if (rng.chance(0.6)) words.push(rng.chance(0.5) ? String(n) : NUMBER_WORDS[n]);
    const obj = noisyObject(a.shape, a.colour, rng);
    if (obj[obj.length - 1] === a.shape && rng.chance(0.7)) obj[obj.length - 1] = plural(a.shape);
    words.push(...obj);
  }
  const distractors = words.length === 0 ? 2 + rng.int(3) : rng.int(4);
  for (let i = 0; i < distractors; i++) {
    const d = rng.pick(DISTRACTORS);
    if (rng.chance(0.5)) words.push(d);
    else words.unshift(d);
  }
  if (rng.chance(0.15)) words.push(rng.chance(0.5) ? `img_${rng.int(10000)}` : `#${rng.int(100)}`);
  let text = words.join(' ');
  const casing = rng.next();
  if (casing < 0.25) text = text.replace(/\b[a-z]/g, (c) => c.toUpperCase());
  else if (casing < 0.32) text = text.toUpperCase();
  if (rng.chance(0.2)) text += rng.pick([' -', ' |', '!', '...', ' :)']);
  return text;
}

const LABEL_TEMPLATES = ['a photo of {c}.', '{c}.', 'a picture of {c}.', 'a drawing of {c}.'];

/**
 * The share of 'labels' captions that describe the whole scene. WIT's alt-texts are mostly
 * label-like, but some describe the scene. With none, the text encoder never saw a layout word
 * or a caption as long as the retrieval set's, and labels models hit a floor on retrieval that
 * training longer made worse (tiny at 131k samples seen retrieved images worse than at 65.5k, on
 * 200 images). 5% (the 2026-12-01 records) let labels learn retrieval at half web's rate; 1% keeps
 * the curve rising but flatter, as a dataset built for classification should. Pilot on 1,000
 * images (micro and tiny on 50k, 8k-262k samples seen, seed 1), image R@5 from micro at 8k to
 * tiny at 131k: 0.045 → 0.48 at 5%, 0.045 → 0.44 at 2%, 0.035 → 0.39 at 1%, every step still a
 * gain (benchmarks/results/study-full-2026-12-02/NOTES.md).
 */
export const LABELS_SCENE_FRACTION = 0.01;

/**
 * A WIT-like caption: mostly the objects' colours and shapes, always right, as class labels are,
 * with no size, place, relation or number, so scenes that differ only in layout read the same;
 * in a minority of samples (LABELS_SCENE_FRACTION) one of the scene's full, true descriptions.
 */
export function labelsCaption(scene: SceneAttributes, rng: Rng): string {
  if (rng.chance(LABELS_SCENE_FRACTION)) return rng.pick(paraphrases(scene, 7));
  const [a, b] = scene.objects;
  const subject = `${a.colour} ${a.shape}`;
  if (scene.kind === 'pair') return `${withArticle(subject)} and ${withArticle(`${b.colour} ${b.shape}`)}.`;
  if (scene.kind === 'count') return `${a.colour} ${plural(a.shape)}.`;
  return rng.pick(LABEL_TEMPLATES).replace('{c}', withArticle(subject));
}

const VAGUE = ['shape', 'object', 'symbol', 'sign'];

/**
 * A LAION-like caption: one of the scene's full descriptions (every place, relation, size and
 * number is there and true), but each shape word is replaced by a vague one 40% of the time and
 * by a look-alike 10% of the time, and a few distractor words come along.
 */
export function webCaption(scene: SceneAttributes, rng: Rng): string {
  let text = rng.pick(paraphrases(scene, 7));
  for (const o of scene.objects) {
    const roll = rng.next();
    if (roll >= 0.5) continue;
    const replacement = roll < 0.4 ? rng.pick(VAGUE) : CONFUSED[o.shape];
    // the plural form first, then the singular: 'crosses' must not become 'shapees'
    const pluralWord = plural(o.shape);
    const pattern = new RegExp(`\\b(${pluralWord}|${o.shape})\\b`);
    text = text.replace(pattern, (w) => (w === pluralWord ? `${replacement}s` : replacement));
  }
  const distractors = rng.int(3);
  for (let i = 0; i < distractors; i++) {
    const d = rng.pick(DISTRACTORS);
    text = rng.chance(0.5) ? `${text} ${d}` : `${d} ${text}`;
  }
  return text;
}
