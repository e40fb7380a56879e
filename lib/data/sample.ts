// What every data source hands the loader: one image (encoded bytes, a file, or pixels
// already made) and its caption or label.

export interface RawSample {
  /** A name for messages and skip reports (shard key, file path, index). */
  key: string;
  /** Encoded image bytes (JPEG, PNG, WebP). */
  image?: Uint8Array;
  /** Or a file holding them. */
  path?: string;
  /** Or pixels already normalised, CHW at the loader's image size (the synthetic world). */
  pixels?: Float32Array;
  caption?: string;
  /** Class index (image-folder and zero-shot sources). */
  label?: number;
}
