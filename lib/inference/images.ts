// Image files as a folder holds them, for embedding and classification.
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

import { IMAGE_FILE_EXTENSIONS } from '../data/image_folder.js';

/** The extensions listImageFiles takes (the image folder's). */
export const IMAGE_EXTENSIONS = IMAGE_FILE_EXTENSIONS;

/**
 * Image files under the given paths: files as given, folders searched recursively in sorted order.
 * `what` names the option or caller in errors.
 */
export function listImageFiles(paths: string | readonly string[], what = 'listImageFiles'): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else if (IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) out.push(p);
    }
  };
  for (const p of typeof paths === 'string' ? [paths] : paths) {
    let s;
    try {
      s = statSync(p);
    } catch {
      throw new Error(`${what}: '${p}' does not exist`);
    }
    if (s.isDirectory()) {
      const before = out.length;
      walk(p);
      if (out.length === before) throw new Error(`${what}: folder '${p}' holds no .jpg, .jpeg, .png or .webp files`);
    } else {
      out.push(p);
    }
  }
  return out;
}
