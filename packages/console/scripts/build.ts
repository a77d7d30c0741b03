/** `node --import tsx packages/console/scripts/build.ts` — builds the console into packages/console/dist. */
import { buildConsole } from '../src/build-console';

const result = await buildConsole({ logLevel: 'info' });
console.log(`console built into ${result.distDir} in ${result.durationMs} ms`);
