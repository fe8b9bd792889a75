// Several conformance servers on one Redis (REDIS_URL: every hub on the hub-redis backplane),
// for the backplane and no-sticky-sessions tests.
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";

/** The heartbeat the nodes run with: a dead node is noticed within three of them. */
export const HEARTBEAT_MS = 200;

/**
 * Starts one conformance server per id, all on `redis`, with `env` added. Returns
 * { [id]: server }; if one fails, the others are stopped and the error thrown.
 */
export async function startNodes(redis, ids, env = {}) {
  const started = await Promise.allSettled(
    ids.map((id) => startServer({ REDIS_URL: redis.url, NODE_ID: id, REDIS_HEARTBEAT_MS: String(HEARTBEAT_MS), ...env })),
  );
  const failed = started.find(({ status }) => status === "rejected");
  if (failed) {
    // Don't leave the others running: `after` only knows the nodes this returns.
    await Promise.all(started.map(({ value }) => value?.stop()));
    throw failed.reason;
  }
  return Object.fromEntries(ids.map((id, i) => [id, started[i].value]));
}

export async function stopNodes(nodes) {
  await Promise.all(Object.values(nodes ?? {}).map((node) => node.stop()));
}

/** Every node still runs, and none logged a panic (a panicking task doesn't end the process). */
export function assertAlive(nodes) {
  for (const [id, node] of Object.entries(nodes)) {
    assert.equal(node.child.exitCode, null, `node ${id} exited; stderr:\n${node.stderr()}`);
    assert.equal(node.child.signalCode, null, `node ${id} was killed; stderr:\n${node.stderr()}`);
    assert.doesNotMatch(node.stderr(), /panicked/, `node ${id} panicked`);
  }
}
