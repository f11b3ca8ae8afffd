/** The offline queue: requests waiting to be sent, persisted through the storage adapter. */

import type { StorageAdapter } from "./types.js";

export type ItemKind = "first_launch" | "launch" | "open" | "event";

export interface QueueItem {
  /** Local id; for events it is the event id sent to linkgen. */
  id: string;
  kind: ItemKind;
  path: "launches" | "events";
  body: Record<string, unknown>;
  attempts: number;
  /** Epoch ms before which the item is not sent again. */
  nextAt: number;
}

// Which items go first when the queue is full: events and opens are worth less than the one
// first launch an install's attribution hangs on, and the oldest of a kind goes first.
const DROP_ORDER: readonly ItemKind[] = ["launch", "open", "event"];

function isItem(value: unknown): value is QueueItem {
  const v = value as QueueItem;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.id === "string" &&
    typeof v.kind === "string" &&
    (v.path === "launches" || v.path === "events") &&
    typeof v.body === "object" &&
    v.body !== null &&
    typeof v.attempts === "number" &&
    typeof v.nextAt === "number"
  );
}

/** A bounded FIFO queue saved under one storage key after every change. */
export class PersistentQueue {
  items: QueueItem[] = [];

  constructor(
    private readonly storage: StorageAdapter,
    private readonly key: string,
    readonly maxSize: number,
  ) {
    if (!Number.isInteger(maxSize) || maxSize < 1) throw new RangeError("maxQueueSize must be a positive integer");
  }

  /** Read the saved queue (an unreadable one is started afresh rather than crashing the app). */
  async load(): Promise<void> {
    const raw = await this.storage.getItem(this.key);
    if (!raw) return;
    try {
      const parsed: unknown = JSON.parse(raw);
      this.items = Array.isArray(parsed) ? parsed.filter(isItem) : [];
      // A new app start tries at once (the network may be back); attempts keep counting.
      for (const item of this.items) item.nextAt = 0;
    } catch {
      this.items = [];
    }
  }

  async save(): Promise<void> {
    await this.storage.setItem(this.key, JSON.stringify(this.items));
  }

  /** Append an item; returns the items dropped to stay within `maxSize`. A plain launch
   * (no deep link) replaces a plain launch still waiting: one is enough to report the app
   * was used. An item whose id is already queued is not added again. */
  async add(item: QueueItem): Promise<QueueItem[]> {
    if (this.items.some((i) => i.id === item.id)) return [];
    const dropped: QueueItem[] = [];
    if (item.kind === "launch") {
      const old = this.items.findIndex((i) => i.kind === "launch" && i.attempts === 0);
      if (old >= 0) dropped.push(...this.items.splice(old, 1));
    }
    this.items.push(item);
    while (this.items.length > this.maxSize) {
      const index = this.dropIndex();
      dropped.push(...this.items.splice(index, 1));
    }
    await this.save();
    return dropped;
  }

  private dropIndex(): number {
    for (const kind of DROP_ORDER) {
      const index = this.items.findIndex((i) => i.kind === kind);
      if (index >= 0) return index;
    }
    return 0;
  }

  has(kind: ItemKind): boolean {
    return this.items.some((i) => i.kind === kind);
  }

  async remove(id: string): Promise<void> {
    this.items = this.items.filter((i) => i.id !== id);
    await this.save();
  }

  async clear(): Promise<void> {
    this.items = [];
    await this.save();
  }
}
