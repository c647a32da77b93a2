/** Thrown values no code should be able to trip over (issue 11), shared by the guard suite and
 *  the fuzzer. Built on demand: fast-check and assertion helpers inspect the values they hold. */

/** An Error behind a Proxy whose every reflection throws. */
export function trappingProxy(): object {
  const trap = (what: string) => () => {
    throw new Error(`${what} trap`);
  };
  return new Proxy(new Error("trap"), {
    get: trap("get"),
    getPrototypeOf: trap("prototype"),
    getOwnPropertyDescriptor: trap("descriptor"),
    has: trap("has"),
  });
}

/** A revoked Proxy: any operation on it but `typeof` throws a TypeError. */
export function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable(new Error("revoked"), {});
  revoke();
  return proxy;
}
