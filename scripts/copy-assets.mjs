#!/usr/bin/env node
// Copies the non-TypeScript sources read at run time (the Redis Lua scripts, the admin console's
// page, script and stylesheet) into dist, beside the compiled modules, so
// `new URL("./redis/put.lua", import.meta.url)` finds them from src (tsx) and from dist alike.
// The files under src stay the source of truth.
import { cpSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const from = join(root, "src/drivers/redis");
const to = join(root, "dist/src/drivers/redis");
const scripts = readdirSync(from).filter((name) => name.endsWith(".lua"));
for (const name of scripts) cpSync(join(from, name), join(to, name));
console.log(`copied ${scripts.length} Lua scripts to ${to}`);

const consoleFrom = join(root, "src/admin/console");
const consoleTo = join(root, "dist/src/admin/console");
cpSync(consoleFrom, consoleTo, { recursive: true });
console.log(`copied the admin console to ${consoleTo}`);
