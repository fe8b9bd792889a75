// Prints the minified + gzipped size of the JSON core (index) and of the msgpack entry point.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";

for (const [name, entry] of [["core (json, 3 transports, reconnect, stateful reconnect)", "src/index.ts"], ["msgpack entry (without @msgpack/msgpack)", "src/msgpack.ts"]]) {
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
  console.log(`${name}: ${code.length} B minified, ${gzipSync(code, { level: 9 }).length} B gzipped`);
}
