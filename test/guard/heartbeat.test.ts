/** The guard's shared heartbeat timer (src/guard/heartbeat.ts): setInterval's behaviour per run,
 *  one timer for all of them, and never holding the process open once no run beats. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { HeartbeatClock } from "../../src/guard/heartbeat.js";

const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

it("each run beats every interval from its own start, whatever the others do", async () => {
  const clock = new HeartbeatClock(40);
  const ticks: Record<string, number[]> = { a: [], b: [], c: [] };
  const started = performance.now();
  const at = (name: string) => () => ticks[name]?.push(performance.now() - started);
  const a = clock.start(at("a"));
  await sleep(15);
  const b = clock.start(at("b"));
  await sleep(50);
  const c = clock.start(at("c"));
  clock.stop(a);
  await sleep(110);
  clock.stop(b);
  clock.stop(c);
  const stoppedAt = performance.now() - started;
  await sleep(100);
  // a: one tick (~40 ms) before it stopped at ~65 ms.
  assert.equal(ticks.a?.length, 1);
  // b from ~15 ms: ~55, ~95, ~135, ~175; c from ~65 ms: ~105, ~145.
  assert.ok((ticks.b?.length ?? 0) >= 2, `b ticked ${ticks.b?.length} times`);
  assert.ok((ticks.c?.length ?? 0) >= 1, `c ticked ${ticks.c?.length} times`);
  for (const [name, list] of Object.entries(ticks)) {
    for (let i = 1; i < list.length; i++)
      // A tick never comes much before its interval (1 ms: Node's cached loop clock).
      assert.ok((list[i] as number) - (list[i - 1] as number) >= 38, `${name}: ${list.join(", ")}`);
    for (const t of list) assert.ok(t <= stoppedAt + 1, `${name} ticked after its stop`);
  }
  assert.ok((ticks.b?.[0] ?? 0) >= 15 + 38, `b's first tick came early: ${ticks.b?.[0]}`);
  assert.ok((ticks.c?.[0] ?? 0) >= 65 + 38, `c's first tick came early: ${ticks.c?.[0]}`);
});

it("holds the process open exactly while a run beats, with one timer for all", () => {
  const before = timers();
  const clock = new HeartbeatClock(60_000);
  const beats = Array.from({ length: 5 }, () => clock.start(() => {}));
  assert.equal(timers(), before + 1, "one referenced timer for five runs");
  for (const beat of beats) clock.stop(beat);
  assert.equal(timers(), before, "no referenced timer once no run beats");
  const again = clock.start(() => {});
  assert.equal(timers(), before + 1, "the next run references it again");
  clock.stop(again);
  clock.stop(again);
  assert.equal(timers(), before);
});

it("a beat stopped by another beat's tick in the same round is not ticked", async () => {
  const clock = new HeartbeatClock(20);
  let ticked = 0;
  // Started in one step: due in the same round, the first ticks first.
  const first = clock.start(() => clock.stop(second));
  const second = clock.start(() => {
    ticked++;
  });
  await sleep(70);
  clock.stop(first);
  assert.equal(ticked, 0);
});
