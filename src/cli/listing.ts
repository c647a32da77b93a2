/**
 * The store-side filters and the paging that `list`, `check` and `clear --all-of-token` share.
 */
import type { PoisonStoreClient } from "../core/contract.js";
import type { ListPoisonsOptions, ListState, PoisonRecord } from "../core/records.js";
import type { CommandContext } from "./context.js";

/** Records asked of the store per round trip: memory stays bounded by this, whatever the total. */
export const LIST_PAGE_SIZE = 500;

/** What `--state` accepts: a stored state, `stale` (in progress, holder not live), or `any`. */
export const STATE_CHOICES = ["poisoned", "in-progress", "stale", "any"] as const;

/** The store-side filters of `list` and `check`. */
export function listFilters(ctx: CommandContext): ListPoisonsOptions & { state?: ListState } {
  const filters: ListPoisonsOptions = {};
  const prefix = ctx.string("prefix");
  if (prefix !== undefined) filters.prefix = prefix;
  const state = ctx.string("state");
  if (state !== undefined && state !== "any") filters.state = state as ListState;
  const token = ctx.string("token");
  if (token !== undefined) filters.token = token;
  const operation = ctx.string("operation");
  if (operation !== undefined) filters.operation = operation;
  return filters;
}

/** `prefix "a/", state poisoned`: the filters in words, for messages. */
export function describeFilters(filters: ListPoisonsOptions): string {
  return [
    filters.prefix !== undefined ? `prefix ${JSON.stringify(filters.prefix)}` : "",
    filters.state ? `state ${filters.state}` : "",
    filters.token !== undefined ? `token ${JSON.stringify(filters.token)}` : "",
    filters.operation !== undefined ? `operation ${JSON.stringify(filters.operation)}` : "",
  ]
    .filter(Boolean)
    .join(", ");
}

/** Every record the filters match, page by page, to `each` (for check and clear). */
export async function forEachRecord(
  store: PoisonStoreClient,
  filters: ListPoisonsOptions,
  each: (records: PoisonRecord[]) => Promise<void>,
): Promise<void> {
  let cursor: string | null = null;
  do {
    const page = await store.listPoisons({ ...filters, limit: LIST_PAGE_SIZE, cursor });
    await each(page.records);
    cursor = page.cursor;
  } while (cursor !== null);
}
