/**
 * Webhook URLs are secrets: a Slack incoming webhook is its path, other services put a token in
 * the query or the user info. They are shown only as their origin (`https://hooks.slack.com/…`),
 * and every message about a delivery goes through a redactor that hides the rest in the
 * spellings an error may carry it (raw, percent-decoded, JSON-escaped).
 */
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../core/errors.js";

export interface Webhook {
  /** Where to POST: the URL without its user info (fetch refuses credentials in a URL). */
  readonly url: string;
  /** `Basic …` from the URL's user info, when it has one. */
  readonly authorization: string | undefined;
  /** Safe to print: scheme, host and port, then `/…` when the URL has more. */
  readonly label: string;
  /** Stable and safe to store: a hash of the URL (the state file keys deliveries by it). */
  readonly id: string;
}

export function parseWebhook(value: unknown, argument: string): Webhook {
  if (typeof value !== "string" || value === "")
    throw new InvalidArgumentError(argument, "must be an http(s) URL");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Never echo the value: it may be a secret with a typo.
    throw new InvalidArgumentError(argument, "is not a valid URL (expected https://host/path)");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new InvalidArgumentError(
      argument,
      `must be an http(s) URL, not ${url.protocol.slice(0, -1)}:`,
    );
  let authorization: string | undefined;
  if (url.username !== "" || url.password !== "") {
    const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    authorization = `Basic ${Buffer.from(user).toString("base64")}`;
    url.username = "";
    url.password = "";
  }
  return {
    url: url.href,
    authorization,
    label: webhookLabel(value),
    id: createHash("sha256").update(value).digest("hex").slice(0, 16),
  };
}

/** `https://hooks.slack.com/…`: the origin, and an ellipsis for whatever follows it. */
export function webhookLabel(value: string): string {
  try {
    const url = new URL(value);
    const more = url.pathname.length > 1 || url.search !== "" || url.hash !== "";
    return `${url.protocol}//${url.host}${more ? "/…" : "/"}`;
  } catch {
    return "(a webhook URL)";
  }
}

/**
 * The parts of a webhook URL that may be secret: the whole URL, its path and query (a Slack
 * webhook's path is its credential), the query alone, the password, and long path segments.
 */
export function webhookSecretParts(url: string): string[] {
  const parts = [url];
  try {
    const parsed = new URL(url);
    parts.push(
      parsed.href,
      `${parsed.pathname}${parsed.search}${parsed.hash}`,
      parsed.search.slice(1),
    );
    parts.push(parsed.password, parsed.username);
    // Tokens are long; words such as "services" or "hooks" are not secrets, and hiding them
    // would garble every message that happens to contain them.
    for (const segment of parsed.pathname.split("/")) if (segment.length >= 16) parts.push(segment);
  } catch {
    // Unparsable: the whole text is all there is to hide.
  }
  return parts.filter((part) => part.length >= 8 && part !== "/");
}

/** A function that replaces every secret part of `webhooks` found in a text by `***`. */
export function webhookRedactor(urls: readonly string[]): (text: string) => string {
  const secrets = new Set<string>();
  for (const url of urls) {
    for (const part of webhookSecretParts(url))
      for (const form of spellings(part)) secrets.add(form);
  }
  const ordered = [...secrets].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const secret of ordered) out = out.replaceAll(secret, "***");
    return out;
  };
}

function spellings(secret: string): string[] {
  const forms = [secret, JSON.stringify(secret).slice(1, -1)];
  try {
    forms.push(decodeURIComponent(secret));
  } catch {
    // Not percent-encoded text.
  }
  forms.push(encodeURIComponent(secret));
  return forms.filter((form) => form.length >= 8);
}
