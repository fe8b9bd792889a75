// Prints the minified + gzipped size of the JSON core (index) and of the msgpack entry point.
// `node scripts/size.mjs --check` also fails (exit 1) when the core is over its budget.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";

/** The JSON core's budget: 8 KB minified + gzipped (all three transports, automatic and stateful reconnect, authentication refresh). */
const CORE_BUDGET = 8000;
const check = process.argv.includes("--check");

const sizes = {};
for (const [name, entry] of [["core (json, 3 transports, reconnect, stateful reconnect, authentication refresh)", "src/index.ts"], ["msgpack entry (without @msgpack/msgpack)", "src/msgpack.ts"]]) {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    external: ["@msgpack/msgpack"],
    write: false,
  });
  const code = result.outputFiles[0].contents;
  sizes[entry] = gzipSync(code, { level: 9 }).length;
  console.log(`${name}: ${code.length} B minified, ${sizes[entry]} B gzipped`);
}

if (check) {
  const core = sizes["src/index.ts"];
  if (core > CORE_BUDGET) {
    console.error(
      `client-ts: the JSON core is ${core} B minified + gzipped, over its budget of ${CORE_BUDGET} B by ${core - CORE_BUDGET} B. ` +
        "Shrink it (the budget is CORE_BUDGET in client-ts/scripts/size.mjs).",
    );
    process.exit(1);
  }
  console.log(`the JSON core is within its budget (${core} B <= ${CORE_BUDGET} B gzipped)`);
}
