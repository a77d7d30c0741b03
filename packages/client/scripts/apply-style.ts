/**
 * The stylesheet of `npm run bench:client`'s pages: the console's (`packages/console/src/styles.css`)
 * in a 900 px column, as it is or with CSS containment added to the transcript, for same-run A/B
 * figures of what containment buys.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const COLUMN = '#root { height: 900px; display: flex; flex-direction: column; }';

/**
 * Containment of the transcript: layout, paint and style of a streamed token kept inside its
 * row, the list and its sizer (whose height is set from script), and the bench page's rows that
 * are out of view skipped (`content-visibility`; the console's virtualised rows are all near the
 * view, and a skipped row would be measured at its placeholder size).
 */
export const CONTAINMENT = `
.messages { contain: content; }
.messages-window { contain: strict; }
.message-row, .message { contain: content; }
.messages > .message { content-visibility: auto; contain-intrinsic-size: auto 60px; }
`;

/** The console's stylesheet (its message list needs a bounded, scrolling box), in a 900 px column. */
export function consoleStyles(root: string, contained = false): string {
  const css = readFileSync(join(root, 'packages/console/src/styles.css'), 'utf8');
  return `${css}\n${COLUMN}${contained ? CONTAINMENT : ''}`;
}
