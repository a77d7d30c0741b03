import { describe, expect, it } from 'vitest';
import { DEMO_ORG_ID, formatRoute, parseRoute } from './route';

const ORG = '7f1c2b3a-1d2e-4f5a-8b9c-0d1e2f3a4b5c';
const AGENT = '6f1d3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f';

describe('parseRoute', () => {
  it('round-trips org and agent routes', () => {
    for (const route of [
      { orgId: ORG, agentId: null },
      { orgId: ORG, agentId: AGENT },
    ]) {
      expect(parseRoute(formatRoute(route))).toEqual(route);
    }
  });

  it('falls back to ?org= and then to the demo org', () => {
    expect(parseRoute('', `?org=${ORG}`)).toEqual({ orgId: ORG, agentId: null });
    expect(parseRoute('')).toEqual({ orgId: DEMO_ORG_ID, agentId: null });
  });

  it('ignores ids that are not uuids', () => {
    expect(parseRoute('#/org/../../etc/passwd').orgId).toBe(DEMO_ORG_ID);
    expect(parseRoute('#/org/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz').orgId).toBe(DEMO_ORG_ID);
    expect(parseRoute('', '?org=<script>').orgId).toBe(DEMO_ORG_ID);
    expect(parseRoute(`#/org/${ORG}/agent/not-an-id`).agentId).toBeNull();
  });

  it('normalises case', () => {
    expect(parseRoute(`#/org/${ORG.toUpperCase()}`).orgId).toBe(ORG);
  });
});
