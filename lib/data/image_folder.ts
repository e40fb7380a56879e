// An image folder for evaluation: ROOT/<class name>/<image>, classes in sorted order
// (torchvision's ImageFolder).
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

import type { RawSample } from './sample.js';

/** File extensions read as images (folders, file lists), lower case with the dot. */
export const IMAGE_FILE_EXTENSIONS: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export class ImageFolderSource implements Iterable<RawSample> {
  readonly classnames: string[];
  readonly items: { path: string; label: number }[] = [];

  constructor(readonly root: string) {
    let entries: string[];
    try {
      entries = readdirSync(root);
    } catch (err) {
      throw new Error(`image folder '${root}': ${(err as Error).message}`);
    }
    this.classnames = entries.filter((e) => statSync(join(root, e)).isDirectory()).sort();
    if (this.classnames.length === 0) throw new Error(`image folder '${root}' has no class folders`);
    this.classnames.forEach((name, label) => {
      for (const f of readdirSync(join(root, name)).sort()) {
        if (IMAGE_FILE_EXTENSIONS.has(extname(f).toLowerCase())) this.items.push({ path: join(root, name, f), label });
      }
    });
  }

  get length(): number {
    return this.items.length;
  }

  *[Symbol.iterator](): Iterator<RawSample> {
    for (const { path, label } of this.items) yield { key: path, path, label, caption: this.classnames[label].replace(/_/g, ' ') };
  }
}
