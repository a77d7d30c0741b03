import chromium from '@sparticuz/chromium';
import { type Browser, chromium as playwright } from 'playwright-core';

/**
 * A headless Chromium for browser tests and benches (@sparticuz/chromium's build, driven by
 * playwright-core). `--single-process`, in @sparticuz/chromium's defaults for AWS Lambda, is
 * dropped: with it, a second browser context's page never rendered here.
 */
export async function launchChromium(): Promise<Browser> {
  return playwright.launch({
    executablePath: await chromium.executablePath(),
    args: [
      ...chromium.args.filter((arg) => arg !== '--single-process'),
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    headless: true,
    timeout: 30_000,
  });
}
