import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { afterAll, describe, expect, it } from 'vitest';
import { renderKustomization, strategicMerge } from './kustomize';
import { alertOperands } from './processes';

// The test helpers that stand in for tools: the kustomize renderer (compared with kubectl where it
// exists, and checked here on its own so a machine without kubectl still relies on something
// tested), the schema validation (it must reject a broken object), and the alert-expression split.

describe('test kustomize renderer', () => {
  const root = mkdtempSync(join(tmpdir(), 'kustomize-test-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const write = (path: string, text: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  };

  write(
    'base/kustomization.yaml',
    'resources: [app.yaml]\nlabels:\n  - pairs: { team: sync }\n    includeSelectors: false\n',
  );
  write(
    'base/app.yaml',
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: { name: web }',
      'spec:',
      '  replicas: 2',
      '  selector: { matchLabels: { app: web } }',
      '  template:',
      '    metadata: { labels: { app: web } }',
      '    spec:',
      '      containers:',
      '        - name: web',
      '          image: app',
      '          env: [{ name: A, value: "1" }, { name: B, value: "2" }]',
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: { name: cfg }',
      'data: { X: "1" }',
    ].join('\n'),
  );
  write(
    'overlay/kustomization.yaml',
    [
      'namespace: ns',
      'resources: [../base]',
      'images: [{ name: app, newName: registry/app, newTag: v2 }]',
      'configMapGenerator: [{ name: cfg, behavior: merge, literals: [Y=2] }]',
      'secretGenerator: [{ name: s, literals: [K=v] }]',
      'patches:',
      '  - path: patch.yaml',
      '  - target: { kind: Deployment }',
      '    patch: |-',
      '      - op: replace',
      '        path: /spec/replicas',
      '        value: 5',
    ].join('\n'),
  );
  write(
    'overlay/patch.yaml',
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          env: [{ name: B, value: "3" }]\n',
  );

  it('applies resources, labels, namespace, images, generators and both kinds of patch', () => {
    const objects = renderKustomization(join(root, 'overlay'));
    const web = objects.find((o) => o.kind === 'Deployment')!;
    const spec = web.spec as {
      replicas: number;
      template: { spec: { containers: { image: string; env: unknown[] }[] } };
    };
    expect(web.metadata).toMatchObject({ namespace: 'ns', labels: { team: 'sync' } });
    expect(spec.replicas).toBe(5);
    expect(spec.template.spec.containers[0]!.image).toBe('registry/app:v2');
    expect(spec.template.spec.containers[0]!.env).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: '3' },
    ]);
    expect(objects.find((o) => o.kind === 'ConfigMap')!.data).toEqual({ X: '1', Y: '2' });
    expect(objects.find((o) => o.kind === 'Secret')).toMatchObject({ data: { K: 'dg==' }, type: 'Opaque' });
  });

  it('refuses what it does not implement instead of ignoring it', () => {
    write('odd/kustomization.yaml', 'resources: []\nreplicas: [{ name: web, count: 3 }]\n');
    expect(() => renderKustomization(join(root, 'odd'))).toThrow(/not supported/);
    write('missing/kustomization.yaml', 'resources: [nope.yaml]\n');
    expect(() => renderKustomization(join(root, 'missing'))).toThrow(/does not exist/);
  });

  it('merges lists by their merge key and replaces other lists, null deletes', () => {
    expect(
      strategicMerge(
        { containers: [{ name: 'a', args: ['x'] }], args: ['1'], keep: 1, drop: 2 },
        { containers: [{ name: 'a', args: ['y'] }, { name: 'b' }], args: ['2'], drop: null },
      ),
    ).toEqual({ containers: [{ name: 'a', args: ['y'] }, { name: 'b' }], args: ['2'], keep: 1 });
  });
});

describe('schema validation', () => {
  it('rejects a broken Deployment (the validator is not vacuous)', () => {
    const bad = new Deployment({
      metadata: { name: 'x' },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: {
          spec: { containers: [{ name: 'c', ports: [{ containerPort: 'http' as unknown as number }] }] },
        },
      },
    });
    expect(() => bad.validate()).toThrow(/containerPort/);
  });
});

describe('alertOperands', () => {
  it('cuts the threshold and splits top-level set operators, leaving nested ones alone', () => {
    expect(alertOperands('up{job="a"} == 0')).toEqual(['up{job="a"}']);
    expect(alertOperands('a / b >= 0.9 and c > 0')).toEqual(['a / b', 'c']);
    expect(alertOperands('(x{s=~"5.."} or y * 0) / z > 0.02')).toEqual(['(x{s=~"5.."} or y * 0) / z']);
    expect(alertOperands('rate(m{l!="v"}[5m])')).toEqual(['rate(m{l!="v"}[5m])']);
  });
});
