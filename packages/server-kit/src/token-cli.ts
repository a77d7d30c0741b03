import { runTokenCommand } from './token-command';

// `npm run token -- --scope org:<id> --scope agent:* --ttl 1h`: prints one token on stdout.
const result = await runTokenCommand(process.argv.slice(2), process.env);
if (result.ok) {
  process.stdout.write(`${result.token}\n`);
} else {
  process.stderr.write(`${result.message}\n`);
  process.exitCode = 2;
}
