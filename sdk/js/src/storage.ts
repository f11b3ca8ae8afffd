/** Storage adapters. */

import type { StorageAdapter } from "./types.js";

/** Keeps everything in memory: for tests, and for platforms with nowhere to persist. */
export class MemoryStorage implements StorageAdapter {
  readonly data = new Map<string, string>();

  getItem(key: string): string | null {
    return this.data.has(key) ? (this.data.get(key) as string) : null;
  }

  setItem(key: string, value: string): void {
    this.data.set(key, value);
  }

  removeItem(key: string): void {
    this.data.delete(key);
  }
}
