/** Reading deep-link values from the URLs an app is opened with. */

import type { DeepLink } from "./types.js";

export const DEEP_LINK_KEYS: readonly string[] = [
  "deep_link_value",
  ...Array.from({ length: 10 }, (_, i) => `deep_link_sub${i + 1}`),
];

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}

/** The query parameters of a URL (first value of each name), without relying on the
 * platform's `URL` (React Native's is incomplete). */
export function queryParams(url: string): Record<string, string> {
  const out: Record<string, string> = {};
  const hash = url.indexOf("#");
  const withoutHash = hash >= 0 ? url.slice(0, hash) : url;
  const q = withoutHash.indexOf("?");
  if (q < 0) return out;
  for (const part of withoutHash.slice(q + 1).split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const name = decode(eq >= 0 ? part.slice(0, eq) : part);
    const value = decode(eq >= 0 ? part.slice(eq + 1) : "");
    if (name && !(name in out)) out[name] = value;
  }
  return out;
}

/** A push payload (CleverTap's `wzrk_dl`), an object with `url`, or a URL string: the URL. */
export function openedUrl(input: string | { wzrk_dl?: unknown; url?: unknown }): string | null {
  let value: unknown = input;
  if (typeof input === "object" && input !== null) value = input.wzrk_dl ?? input.url;
  if (typeof value !== "string" || !value.trim()) return null;
  const url = value.trim();
  // A wrapper URL whose own wzrk_dl parameter holds the link (some push handlers pass that).
  const inner = queryParams(url).wzrk_dl;
  return inner && /^[a-z][a-z0-9+.-]*:/i.test(inner) ? inner : url;
}

/** The deep-link values a URL carries itself (`deep_link_value`, `deep_link_sub1..10`). */
export function deepLinkFromUrl(url: string): DeepLink {
  const params = queryParams(url);
  const found: DeepLink = { status: "NOT_FOUND" };
  for (const key of DEEP_LINK_KEYS) {
    if (params[key] !== undefined && params[key] !== "") found[key] = params[key];
  }
  if (Object.keys(found).length > 1) found.status = "FOUND";
  return found;
}

/** The install referrer of a Google Play URL (`referrer=af_tranid%3D...`), decoded: what the
 * Play Install Referrer API gives the app after an install from that URL. */
export function referrerFromPlayUrl(url: string): string | null {
  const value = queryParams(url).referrer;
  return value ? value : null;
}
