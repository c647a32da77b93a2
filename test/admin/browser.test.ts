/**
 * The console in a real browser: Debian's chromium driven by playwright-core. An operator signs
 * in, finds the poisoned key, opens it, clears it with a reason and sees the audit entry; a viewer
 * sees no clear button and the API refuses the clear. Screenshots of the list, the detail and the
 * clear dialog go to $POISON_SCREENSHOTS (default: a temporary folder, printed).
 *
 * .ci/run installs chromium; elsewhere a missing browser is a loud skip (a failure with
 * POISON_REQUIRE_ALL=1). POISON_CHROMIUM overrides /usr/bin/chromium.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { openPoisonStore, type PoisonStoreClient } from "../../src/index.js";
import {
  BAD_SECRET,
  call,
  LIVE_KEY,
  OPERATOR_SECRET,
  POISONED_KEY,
  type RunningAdmin,
  STALE_KEY,
  seed,
  startAdmin,
  VIEWER_SECRET,
} from "./support.js";

const CHROMIUM = process.env.POISON_CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const skip = existsSync(CHROMIUM)
  ? null
  : `no browser at ${CHROMIUM} (apt-get install -y chromium, or set POISON_CHROMIUM)`;
if (skip !== null) {
  if (process.env.POISON_REQUIRE_ALL === "1") {
    it("chromium is installed (POISON_REQUIRE_ALL=1)", () => assert.fail(skip));
  } else process.stderr.write(`\n*** SKIPPED the console browser tests: ${skip} ***\n\n`);
}

describe("admin console in chromium", { skip: skip ?? false, timeout: 120_000 }, () => {
  const scratch = mkdtempSync(join(tmpdir(), "poison-console-"));
  const shots = process.env.POISON_SCREENSHOTS || join(scratch, "screenshots");
  let store: PoisonStoreClient;
  let running: RunningAdmin;
  let browser: BrowserContext;

  before(async () => {
    mkdirSync(shots, { recursive: true });
    // `location` is what the console's header shows (and the screenshots in docs/).
    store = openPoisonStore(`sqlite:${join(scratch, "console.db")}`, {
      location: "sqlite:/var/lib/control-plane/poison.db",
    });
    await seed(store);
    // Enough other keys for two pages, so "finding" the key means filtering.
    await store.tryPutPoisons(
      Array.from({ length: 60 }, (_, i) => `cache/${String(2000 + i)}`),
      "procedure-bulk",
      { operation: "add-index", owner: "node-4:31" },
    );
    running = await startAdmin(store, { events: { intervalMs: 100 } });
    browser = await chromium.launchPersistentContext(join(scratch, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 860 },
    });
  });

  after(async () => {
    await browser?.close();
    await running?.close();
    await store?.close();
    // Keep only the screenshots (in the scratch folder unless POISON_SCREENSHOTS says where).
    for (const name of ["profile", "console.db", "console.db-wal", "console.db-shm"])
      rmSync(join(scratch, name), { recursive: true, force: true });
    if (process.env.POISON_SCREENSHOTS) rmSync(scratch, { recursive: true, force: true });
    else process.stderr.write(`console screenshots: ${shots}\n`);
  });

  /** A new tab (its own sessionStorage), failing the test on any script error. */
  async function tab(): Promise<Page> {
    const page = await browser.newPage();
    page.on("pageerror", (error) => assert.fail(`script error in the console: ${error.message}`));
    return page;
  }

  const textOf = async (locator: { textContent(): Promise<string | null> }) =>
    (await locator.textContent()) ?? "";

  async function signIn(page: Page, secret: string): Promise<void> {
    await page.goto(`${running.url}/`);
    await page.getByLabel("Access token").fill(secret);
    await page.getByRole("button", { name: "Sign in" }).click();
  }

  it("refuses a bad token at sign-in", async () => {
    const page = await tab();
    await signIn(page, BAD_SECRET);
    await page.getByText("That token was not accepted.").waitFor();
    await page.close();
  });

  it("lets an operator find the poisoned key, open it, clear it with a reason and see the audit entry", async () => {
    const page = await tab();
    await signIn(page, OPERATOR_SECRET);
    await page.getByText("signed in as").waitFor();
    await page
      .getByText("sqlite:/var/lib/control-plane/poison.db · /__procedure_poison/")
      .waitFor();
    // The first page holds 50 of the 63 keys; the poisoned one is found by filtering.
    await page.getByRole("link", { name: "cache/2000" }).waitFor();
    assert.equal(await page.getByRole("link", { name: POISONED_KEY }).count(), 0);
    await page.getByRole("button", { name: "Next page →" }).click();
    await page.getByRole("link", { name: POISONED_KEY }).waitFor();
    await page.getByRole("row").filter({ hasText: LIVE_KEY }).getByText("live").first().waitFor();
    await page.screenshot({ path: join(shots, "admin-list.png"), fullPage: true });
    await page.getByLabel("Key prefix").fill("table/10");
    await page.getByLabel("Key prefix").press("Enter");
    const row = page.getByRole("row").filter({ hasText: POISONED_KEY });
    await row.getByText("poisoned", { exact: true }).waitFor();
    assert.match(await textOf(row), /ShardTimeoutError: shard 3 did not answer/);
    assert.match(await textOf(row), /alter-table/);

    // Open it from the keyboard.
    await page.getByRole("link", { name: POISONED_KEY }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: `Poison key ${POISONED_KEY}` }).waitFor();
    const focused = await page.evaluate("document.activeElement?.tagName");
    assert.equal(focused, "H1", "the heading takes focus when the view changes");
    await page.getByText("ShardTimeoutError", { exact: true }).waitFor();
    assert.match(await textOf(page.getByLabel("Stack trace")), /half-applied/);
    assert.match(await textOf(page.getByLabel("Repair data as JSON")), /"ddl": "ALTER TABLE/);
    await page.screenshot({ path: join(shots, "admin-detail.png"), fullPage: true });

    await page.getByRole("button", { name: "Clear this key…" }).click();
    await page.getByRole("dialog", { name: "Clear poison key" }).waitFor();
    // Its name changes once cleared ("Key cleared"): hold on to the element itself.
    const dialog = page.locator("dialog#clear-dialog");
    assert.equal(
      await page.evaluate("document.activeElement?.id"),
      "clear-reason",
      "the reason takes focus",
    );
    const confirm = dialog.getByRole("button", { name: "Clear key" });
    await dialog.getByLabel("Reason (for the audit log)").fill("re-ran ALTER on shard 3, verified");
    assert.equal(await confirm.isDisabled(), true, "not until the key is typed back");
    await dialog.getByLabel("Type the key to confirm").fill("table/102");
    assert.equal(await confirm.isDisabled(), true, "a wrong key does not confirm");
    await dialog.getByLabel("Type the key to confirm").fill(POISONED_KEY);
    assert.equal(await confirm.isDisabled(), false);
    await dialog.getByText("No live holder").waitFor();
    await page.screenshot({ path: join(shots, "admin-clear-dialog.png") });
    await confirm.click();

    await dialog.getByRole("heading", { name: "Key cleared" }).waitFor();
    const entry = dialog.getByRole("status");
    assert.match(await textOf(entry), /force-delete/);
    assert.match(await textOf(entry), /olga/);
    assert.match(await textOf(entry), /re-ran ALTER on shard 3, verified/);
    assert.equal(await store.getPoison(POISONED_KEY), null, "the key is gone from the store");
    await dialog.getByRole("button", { name: "Done" }).click();

    await page.getByText("This key is not present").waitFor();
    const history = page.locator("#history").getByRole("row").filter({ hasText: "olga" });
    await history.waitFor();
    assert.match(await textOf(history), /force-delete/);
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("heading", { name: "Audit log" }).waitFor();
    await page.getByRole("row").filter({ hasText: "re-ran ALTER on shard 3" }).waitFor();
    await page.close();
  });

  it("refreshes the list live from /events", async () => {
    const page = await tab();
    await signIn(page, OPERATOR_SECRET);
    await page.getByText("● live").waitFor();
    await page.getByLabel("Key prefix").fill("live/");
    await page.getByLabel("Key prefix").press("Enter");
    await page.getByText("No poison keys match").waitFor();
    await store.tryPutPoison("live/appeared", "procedure-new", { operation: "resize" });
    await page.getByRole("link", { name: "live/appeared" }).waitFor({ timeout: 10_000 });
    await page.close();
  });

  it("works from the keyboard alone", async () => {
    const page = await tab();
    await page.goto(`${running.url}/`);
    await page.getByLabel("Access token").waitFor();
    await page.keyboard.type(OPERATOR_SECRET); // the token field has focus
    await page.keyboard.press("Enter");
    await page.getByText("signed in as").waitFor();
    await page.getByRole("link", { name: "cache/2000" }).waitFor();
    await page.keyboard.press("/"); // focuses the prefix filter
    await page.keyboard.type("shard/");
    await page.keyboard.press("Enter");
    await page.getByRole("link", { name: STALE_KEY }).waitFor();
    const focusedText = () => page.evaluate<string>("document.activeElement?.textContent ?? ''");
    for (let i = 0; i < 40 && (await focusedText()) !== STALE_KEY; i++)
      await page.keyboard.press("Tab");
    assert.equal(await focusedText(), STALE_KEY, "Tab reaches the key's link");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: `Poison key ${STALE_KEY}` }).waitFor();
    for (let i = 0; i < 20 && (await focusedText()) !== "Clear this key…"; i++)
      await page.keyboard.press("Tab");
    assert.equal(await focusedText(), "Clear this key…", "Tab reaches the clear button");
    await page.keyboard.press("Enter");
    await page.getByRole("dialog", { name: "Clear poison key" }).waitFor();
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "hidden" });
    assert.equal(await focusedText(), "Clear this key…", "focus returns to the button");
    assert.equal(await store.getPoison(STALE_KEY), "procedure-dead");
    await page.close();
  });

  it("fits a 375-px phone screen, every control labelled", async () => {
    const page = await tab();
    await page.setViewportSize({ width: 375, height: 760 });
    await signIn(page, OPERATOR_SECRET);
    await page.getByLabel("Key prefix").fill("shard/");
    await page.getByLabel("Key prefix").press("Enter");
    await page.getByRole("link", { name: STALE_KEY }).waitFor();
    const overflow = () =>
      page.evaluate<number>(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth",
      );
    assert.ok((await overflow()) <= 0, "no sideways scrolling on the list");
    // Every control has a label (or an aria-label, or text for a button).
    const unlabelled = await page.evaluate<string[]>(`
      [...document.querySelectorAll("input, select, textarea, button")]
        .filter((el) => !((el.labels && el.labels.length > 0) || el.getAttribute("aria-label") ||
          (el.tagName === "BUTTON" && el.textContent.trim())))
        .map((el) => el.outerHTML)
    `);
    assert.deepEqual(unlabelled, []);
    await page.getByRole("link", { name: STALE_KEY }).click();
    await page.getByRole("button", { name: "Clear this key…" }).waitFor();
    assert.ok((await overflow()) <= 0, "no sideways scrolling on the detail");
    await page.close();
  });

  it("shows a viewer no clear button, and the API refuses the viewer's clear", async () => {
    const page = await tab();
    await signIn(page, VIEWER_SECRET);
    await page.getByText("(viewer)").waitFor();
    await page.getByLabel("Key prefix").fill("shard/");
    await page.getByLabel("Key prefix").press("Enter");
    await page.getByRole("link", { name: STALE_KEY }).click();
    await page.getByText("Clearing a key needs the operator role.").waitFor();
    assert.equal(await page.getByRole("button", { name: /Clear/ }).count(), 0);
    const status = await page.evaluate(
      async ({ key, secret }) => {
        const response = await fetch(`api/v1/poisons/${encodeURIComponent(key)}/clear`, {
          method: "POST",
          headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
          body: JSON.stringify({ reason: "viewer tries anyway" }),
        });
        return response.status;
      },
      { key: STALE_KEY, secret: VIEWER_SECRET },
    );
    assert.equal(status, 403);
    const direct = await call(
      `${running.url}/api/v1/poisons/${encodeURIComponent(STALE_KEY)}/clear`,
      {
        method: "POST",
        token: VIEWER_SECRET,
        body: { reason: "viewer tries anyway" },
      },
    );
    assert.equal(direct.status, 403);
    assert.equal(await store.getPoison(STALE_KEY), "procedure-dead");
    await page.close();
  });

  // Needs the second-release store: heartbeatIntervalMs kept and live holders refused.
  it("refuses a live holder in the dialog unless the override is ticked", async () => {
    const page = await tab();
    await signIn(page, OPERATOR_SECRET);
    await page.goto(`${running.url}/#/key/${encodeURIComponent(LIVE_KEY)}`);
    await page.getByRole("button", { name: "Clear this key…" }).click();
    await page.getByRole("dialog", { name: "Clear poison key" }).waitFor();
    const dialog = page.locator("dialog#clear-dialog");
    await dialog.getByText(/^The holder is live \(live: heartbeat/).waitFor({ timeout: 5000 });
    await dialog.getByLabel("Reason (for the audit log)").fill("node-2 is gone");
    await dialog.getByLabel("Type the key to confirm").fill(LIVE_KEY);
    const confirm = dialog.getByRole("button", { name: "Clear key" });
    assert.equal(await confirm.isDisabled(), true, "not without the override");
    await dialog.getByLabel(/Clear it even though the holder is live/).check();
    await confirm.click();
    await dialog.getByText("force-delete (even if alive)").waitFor();
    await page.close();
  });
});
