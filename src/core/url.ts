/** Store URLs as they may be shown: never with a password. */

/**
 * `url` with the password of its authority replaced by `***`, safe to print. The password runs
 * to the last `@` before the path (a password typed with a raw `@` is hidden whole); a URL that
 * cannot be read as `scheme://user:password@…` is returned without anything between `//` and
 * the last `@`, so a mistyped URL cannot leak one either.
 */
export function redactUrl(url: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*@)?(.*)$/is.exec(url);
  if (!match) return url;
  const [, scheme, userinfo, rest] = match as unknown as [
    string,
    string,
    string | undefined,
    string,
  ];
  if (!userinfo) return url;
  const colon = userinfo.indexOf(":");
  if (colon < 0) return `${scheme}${userinfo}${rest}`; // a user name alone is not a secret
  return `${scheme}${userinfo.slice(0, colon)}:***@${rest}`;
}
