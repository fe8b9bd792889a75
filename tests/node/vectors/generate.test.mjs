// The committed official.json must be exactly what generate.mjs produces now.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { OFFICIAL_PATH, generate, serialize } from "./generate.mjs";

test("official.json is up to date (regenerate with `npm run vectors`)", () => {
  const committed = readFileSync(OFFICIAL_PATH, "utf8");
  const fresh = serialize(generate());
  // Compare parsed first for a readable diff, then the text for formatting drift.
  assert.deepEqual(JSON.parse(committed), JSON.parse(fresh));
  assert.equal(committed, fresh);
});
