/** Store URLs as they may be shown: never with a password. */

/**
 * `url` with the password of its authority replaced by `***`, safe to print. Everything between
 * `scheme://` and the last `@` is taken as the user info, so a password typed with a raw `@`,
 * `/`, `?` or `#` (not valid in a URL, but typed all the same) is hidden whole; erring on the side
 * of hiding too much is the point. A user name alone (no `:`) is kept.
 */
export function redactUrl(url: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(.*)@([^@]*)$/is.exec(url);
  if (!match) return url;
  const [, scheme, userinfo, rest] = match as unknown as [string, string, string, string];
  const colon = userinfo.indexOf(":");
  if (colon < 0) return url; // a user name alone is not a secret
  return `${scheme}${userinfo.slice(0, colon)}:***@${rest}`;
}
