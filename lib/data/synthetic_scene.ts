// What a synthetic scene holds, and how one is drawn at random: one object (with a size
// and a place), two objects in a relation, or several copies of one object (a count).
import { COLOURS, SHAPES, type Colour, type DrawnObject, type Shape } from './synthetic_draw.js';
import { Rng } from './rng.js';

export type SceneKind = 'single' | 'pair' | 'count';
export type SizeWord = 'small' | 'large';
export type Relation = 'left of' | 'right of' | 'above' | 'below';

export const POSITIONS = [
  'at the top left', 'at the top', 'at the top right',
  'on the left', 'in the center', 'on the right',
  'at the bottom left', 'at the bottom', 'at the bottom right',
] as const;
export type Position = (typeof POSITIONS)[number];
export const RELATIONS: readonly Relation[] = ['left of', 'right of', 'above', 'below'];

/** A scene's ground truth; positions and radii are fractions of the image side. */
export interface SceneAttributes {
  kind: SceneKind;
  /** The objects drawn; objects[0] is the subject (of a pair, the one named first). */
  objects: { shape: Shape; colour: Colour; x: number; y: number; r: number }[];
  /** single scenes: the object's size and place. */
  size?: SizeWord;
  position?: Position;
  /** pair scenes: objects[0] is `relation` objects[1]. */
  relation?: Relation;
  /** How many objects (count scenes: all alike). */
  count: number;
}

/** How likely each shape and colour is: uniform, or skewed (Zipf-like, 1/rank). */
export interface AttributePriors {
  shapes: number[];
  colours: number[];
}

export const UNIFORM_PRIORS: AttributePriors = { shapes: SHAPES.map(() => 1), colours: COLOURS.map(() => 1) };
export const SKEWED_PRIORS: AttributePriors = {
  shapes: SHAPES.map((_, k) => 1 / (k + 1)),
  colours: COLOURS.map((_, k) => 1 / (k + 1)),
};

const CELL = [0.22, 0.5, 0.78];

export interface SceneOptions {
  kind?: SceneKind;
  shape?: Shape;
  colour?: Colour;
}

/** Draws a scene's attributes. `options` pins the kind, or the subject's shape/colour. */
export function sampleScene(rng: Rng, priors: AttributePriors, options: SceneOptions = {}): SceneAttributes {
  const kind: SceneKind = options.kind ?? (['single', 'pair', 'count'] as const)[rng.weighted([0.5, 0.3, 0.2])];
  const shapeOf = () => SHAPES[rng.weighted(priors.shapes)];
  const colourOf = () => COLOURS[rng.weighted(priors.colours)];
  const shape = options.shape ?? shapeOf();
  const colour = options.colour ?? colourOf();
  if (kind === 'single') {
    const size: SizeWord = rng.chance(0.5) ? 'small' : 'large';
    const cell = rng.int(9);
    const r = size === 'small' ? rng.uniform(0.09, 0.13) : rng.uniform(0.17, 0.22);
    const x = CELL[cell % 3] + rng.uniform(-0.04, 0.04);
    const y = CELL[Math.floor(cell / 3)] + rng.uniform(-0.04, 0.04);
    return { kind, objects: [{ shape, colour, x, y, r }], size, position: POSITIONS[cell], count: 1 };
  }
  if (kind === 'pair') {
    let other: { shape: Shape; colour: Colour };
    do other = { shape: shapeOf(), colour: colourOf() };
    while (other.shape === shape && other.colour === colour);
    const relation = rng.pick(RELATIONS);
    // Along the relation's axis the two are ≥ 0.24 apart; across it, ≤ 0.15: never ambiguous.
    const near = rng.uniform(0.15, 0.38);
    const far = rng.uniform(0.62, 0.85);
    const across = rng.uniform(0.3, 0.7);
    const across2 = across + rng.uniform(-0.15, 0.15);
    const first = relation === 'left of' || relation === 'above' ? near : far;
    const second = first === near ? far : near;
    const horizontal = relation === 'left of' || relation === 'right of';
    const r1 = rng.uniform(0.09, 0.12);
    const r2 = rng.uniform(0.09, 0.12);
    const a = horizontal ? { x: first, y: across } : { x: across, y: first };
    const b = horizontal ? { x: second, y: across2 } : { x: across2, y: second };
    return { kind, objects: [{ shape, colour, ...a, r: r1 }, { ...other, ...b, r: r2 }], relation, count: 2 };
  }
  const count = 2 + rng.int(3);
  const cells = rng.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 8]).slice(0, count);
  const objects = cells.map((cell) => ({
    shape,
    colour,
    x: CELL[cell % 3] + rng.uniform(-0.03, 0.03),
    y: CELL[Math.floor(cell / 3)] + rng.uniform(-0.03, 0.03),
    r: rng.uniform(0.07, 0.11),
  }));
  return { kind, objects, count };
}

/** The scene's objects in pixels of an image `size` pixels wide. */
export function toDrawn(scene: SceneAttributes, size: number): DrawnObject[] {
  return scene.objects.map((o) => ({ shape: o.shape, colour: o.colour, cx: o.x * size, cy: o.y * size, r: o.r * size }));
}
