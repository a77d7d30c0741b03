/**
 * The `sub` claim of a JWT, read without verifying (the server verifies); used only to keep one
 * local database per user so accounts sharing a browser never see each other's cached records.
 */
export function tokenSubject(token: string): string {
  try {
    const payload = token.split('.')[1] ?? '';
    const binary = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const json = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === 'string' && sub.length > 0 && sub.length <= 200 ? sub : 'anonymous';
  } catch {
    return 'anonymous';
  }
}
