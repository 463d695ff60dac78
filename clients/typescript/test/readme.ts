// Every ```ts and ```js example of the package's README, compiled (strict) and run against the live
// server, with its base URL and token in place of the README's placeholders.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";

import { footfall, freePort, PACKAGE_ROOT, type Live } from "./harness.js";

const run = promisify(execFile);
// Under the package, so that `import ... from "@footfall/client"` finds the package itself.
const WORK = join(PACKAGE_ROOT, "build", "readme");

interface Example {
  line: number;
  language: "ts" | "js";
  code: string;
}

function examples(readme: string): Example[] {
  const found: Example[] = [];
  for (const match of readme.matchAll(/^```(ts|js)\n([\s\S]*?)^```$/gm)) {
    const line = readme.slice(0, match.index).split("\n").length;
    found.push({ line, language: match[1] as "ts" | "js", code: match[2]! });
  }
  return found;
}

async function outputOf(promise: Promise<{ stdout: string; stderr: string }>): Promise<string> {
  try {
    return (await promise).stdout;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    assert.fail(`${failed.message}\n${failed.stdout ?? ""}\n${failed.stderr ?? ""}`);
  }
}

const readme = await readFile(join(PACKAGE_ROOT, "README.md"), "utf8");
const all = examples(readme);
// Compiled as printed while the server starts (tsc takes seconds); the placeholders, string and number
// literals, come through the compiler unchanged and are replaced in its output.
const compiled = compile();
compiled.catch(() => undefined); // its failure is the compile test's to report, not an unhandled rejection

async function compile(): Promise<{ stdout: string; stderr: string }> {
  await rm(WORK, { recursive: true, force: true });
  await mkdir(join(WORK, "src"), { recursive: true });
  await mkdir(join(WORK, "out"), { recursive: true });
  for (const example of all) {
    const folder = example.language === "ts" ? "src" : "out";
    await writeFile(join(WORK, folder, `line-${example.line}.${example.language}`), example.code);
  }
  // What a user's project would have: strict, ESM on Node.
  await writeFile(join(WORK, "tsconfig.json"), JSON.stringify({
    compilerOptions: { strict: true, target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext",
      types: ["node"], skipLibCheck: true, rootDir: "src", outDir: "out" },
    include: ["src"],
  }));
  return run(process.execPath, [join(PACKAGE_ROOT, "node_modules", "typescript", "bin", "tsc"), "-p",
    join(WORK, "tsconfig.json")]);
}

describe("README examples", () => {
  let live: Live;
  before(async () => {
    live = await footfall();
  });

  test("has the five lines, and examples of TypeScript and JavaScript", () => {
    assert.ok(all.length >= 4);
    assert.ok(all.some((example) => example.language === "js"));
    assert.match(all[0]!.code, /new Footfall\(\{ baseUrl: "http:\/\/127\.0\.0\.1:8000", token: "ffpat_\.\.\." \}\)/);
  });

  test("the TypeScript examples compile under strict", async () => {
    await outputOf(compiled);
  });

  for (const example of all) {
    test(`the ${example.language} example at README.md line ${example.line} runs`, async () => {
      const built = join(WORK, "out", `line-${example.line}.js`);
      const code = (await readFile(built, "utf8")).replaceAll("http://127.0.0.1:8000", live.baseUrl)
        .replaceAll("ffpat_...", live.token).replaceAll("9000", String(await freePort()));
      const runnable = join(WORK, "out", `line-${example.line}.live.js`);
      await writeFile(runnable, code);
      const stdout = await outputOf(run(process.execPath, [runnable], { timeout: 60_000 }));
      if (example.code.includes("console.log(")) assert.notEqual(stdout.trim(), "", "it printed nothing");
    });
  }
});
