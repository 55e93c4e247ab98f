// Builds the console into dist/, which the hookd binary embeds. The output
// holds only our own code (the client is typed from openapi.yaml but has
// no runtime dependency), so dist/ is committed and `make run` needs no npm;
// `make check-console` rebuilds it and fails if the result differs.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
const common = { bundle: true, minify: true, legalComments: "none", logLevel: "warning", charset: "utf8" };
await build({ ...common, entryPoints: ["src/main.ts"], outfile: "dist/app.js", format: "iife", target: "es2020" });
await build({ ...common, entryPoints: ["src/style.css"], outfile: "dist/app.css" });
copyFileSync("index.html", "dist/index.html");
copyFileSync("favicon.svg", "dist/favicon.svg");
