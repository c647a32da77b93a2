/**
 * The web console's files: one HTML page and one script and one stylesheet, served as they are
 * written in ./console/ (no bundler, no build step, no dependency). They are read on the first
 * request that needs them, so importing the package reads nothing.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";

interface Asset {
  body: string;
  etag: string;
  type: string;
}

const TYPES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

const cache = new Map<string, Promise<Asset>>();

function load(name: string, transform: (text: string) => string = (text) => text, variant = "") {
  const id = `${name}\u0000${variant}`;
  let asset = cache.get(id);
  if (!asset) {
    asset = readFile(new URL(`./console/${name}`, import.meta.url), "utf8").then((text) => {
      const body = transform(text);
      const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
      return { body, etag, type: TYPES[name] ?? "application/octet-stream" };
    });
    asset.catch(() => cache.delete(id));
    cache.set(id, asset);
  }
  return asset;
}

function serve(asset: Asset, ifNoneMatch: string | null, head: boolean): Response {
  const headers = {
    "content-type": asset.type,
    etag: asset.etag,
    // Revalidate every time: a console that is one release behind the API is worse than a
    // round trip.
    "cache-control": "no-cache",
  };
  if (ifNoneMatch === asset.etag) return new Response(null, { status: 304, headers });
  return new Response(head ? null : asset.body, { status: 200, headers });
}

const escapeAttribute = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;");

/** The page, with the base path written into its links and its `data-base` attribute (the
 *  script reads it there: no inline script, so the CSP can forbid them). */
export async function consolePage(
  basePath: string,
  ifNoneMatch: string | null,
  head: boolean,
): Promise<Response> {
  const asset = await load(
    "index.html",
    (text) => text.replaceAll("{{BASE}}", escapeAttribute(basePath)),
    basePath,
  );
  return serve(asset, ifNoneMatch, head);
}

export async function consoleAsset(
  name: string,
  ifNoneMatch: string | null,
  head: boolean,
): Promise<Response> {
  return serve(await load(name), ifNoneMatch, head);
}
