/** The loopback names a browser on this machine uses for the server. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'] as const;

/**
 * Whether a `Host` header names this server. Entries are `name` (any port, or none), `name:port`,
 * or `*` (every host: only behind a proxy that checks it). Without entries, the loopback names on
 * `port` — a page on another domain that rebinds its name to 127.0.0.1 still sends its own name,
 * and is refused.
 */
export function hostMatcher(entries: readonly string[] | undefined, port: number): (host: string) => boolean {
  const list =
    entries ?? LOOPBACK_HOSTS.flatMap((name) => (port === 80 ? [name, `${name}:80`] : [`${name}:${port}`]));
  if (list.includes('*')) return () => true;
  const exact = new Set(list.filter((entry) => hostAndPort(entry).port !== undefined));
  const anyPort = new Set(list.filter((entry) => hostAndPort(entry).port === undefined));
  return (header) => {
    const host = header.trim().toLowerCase();
    return exact.has(host) || anyPort.has(hostAndPort(host).name);
  };
}

function hostAndPort(value: string): { name: string; port: string | undefined } {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(value);
  if (!match) return { name: value, port: undefined };
  return { name: match[1] ?? value, port: match[2] };
}
