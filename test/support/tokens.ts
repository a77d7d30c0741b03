import { createAuth } from '@openagents/sync-server-kit';

/** The secret every test service is configured with. */
export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';
export const testAuth = createAuth({ secret: TEST_JWT_SECRET });

export function tokenFor(scopes: string[], sub = 'user-1', ttlSeconds = 3600): Promise<string> {
  return testAuth.sign({ sub, scopes }, ttlSeconds);
}
