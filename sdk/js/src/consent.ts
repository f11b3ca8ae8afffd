/** Which identifiers each consent level lets out of the device. */

import type { Consent } from "./types.js";

/** Fields never sent under `reduced`: advertising and vendor ids (they link the person across
 * apps or across installs). */
export const REDUCED_DROPS: readonly string[] = ["idfa", "gaid", "idfv"];

export const CONSENT_LEVELS: readonly Consent[] = ["full", "reduced", "none"];

export function isConsent(value: unknown): value is Consent {
  return typeof value === "string" && (CONSENT_LEVELS as readonly string[]).includes(value);
}

/** The body as this consent level lets it go out, or null when nothing may be sent. */
export function applyConsent(
  consent: Consent,
  body: Record<string, unknown>,
): Record<string, unknown> | null {
  if (consent === "none") return null;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined || value === null) continue;
    if (consent === "reduced" && REDUCED_DROPS.includes(key)) continue;
    out[key] = value;
  }
  return out;
}
