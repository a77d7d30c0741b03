import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * "No function over ~80 lines in the gateway" (issue 13): a function that long does several
 * things, and the gateway's pieces are meant to be nameable. The count is from the line of the
 * function's first token to the line of its last, so a body with its comments is measured the
 * way a reader meets it. Test files are left out: a `describe` block is not a function to split.
 */
const MAX_LINES = 80;
const SOURCE_DIR = join(import.meta.dirname, '../src');

export interface LongFunction {
  readonly where: string;
  readonly lines: number;
}

export function longFunctions(fileName: string, text: string, maxLines: number): LongFunction[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: LongFunction[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > maxLines) found.push({ where: `${fileName}:${first + 1} ${nameOf(node)}`, lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function nameOf(node: ts.SignatureDeclaration): string {
  if (node.name !== undefined) return node.name.getText();
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) return parent.name.getText();
  return '(anonymous)';
}

function gatewaySources(): string[] {
  return readdirSync(SOURCE_DIR).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'));
}

describe('gateway function length', () => {
  it('measures a function from its first line to its last', () => {
    const body = Array.from({ length: 5 }, (_, i) => `  const a${i} = ${i};`).join('\n');
    const text = `function short() {\n  return 1;\n}\nconst long = () => {\n${body}\n};\n`;
    expect(longFunctions('x.ts', text, 6)).toEqual([{ where: 'x.ts:4 long', lines: 7 }]);
    expect(longFunctions('x.ts', text, 7)).toEqual([]);
  });

  it(`has no function, method or arrow over ${MAX_LINES} lines in services/gateway/src`, () => {
    const sources = gatewaySources();
    expect(sources.length).toBeGreaterThan(10);
    const tooLong = sources.flatMap((name) =>
      longFunctions(name, readFileSync(join(SOURCE_DIR, name), 'utf8'), MAX_LINES),
    );
    expect(tooLong).toEqual([]);
  });
});
