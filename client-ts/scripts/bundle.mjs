// Emits dist/index.js and dist/msgpack.js (ES modules; @msgpack/msgpack stays an import; code the
// two entry points share goes into a chunk so classes stay one class).
import { build } from "esbuild";

await build({
  entryPoints: ["src/index.ts", "src/msgpack.ts"],
  outdir: "dist",
  bundle: true,
  splitting: true,
  chunkNames: "chunk-[hash]",
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["@msgpack/msgpack"],
  sourcemap: true,
  logLevel: "warning",
});
