// Records a HAR of one page with Debian's Chromium, driven by playwright-core: the browser side
// of tests/cli/convert_browser.rs (pummel convert har on a real browser's recording).
//
//   node tests/browser/record-har.mjs URL HAR_FILE PROFILE_DIR
//
// Opens URL in headless Chromium with a new profile (PROFILE_DIR), waits until the page sets
// `window.__done` (or reports `window.__failed`), closes the browser — which writes the HAR —
// and exits 0. Every step is bounded: after 30 s it gives up and exits 2, closing the browser.
// Traffic goes only where the page sends it (the test serves it on 127.0.0.1).

import { chromium } from 'playwright-core';

const [url, harPath, profile] = process.argv.slice(2);
if (!url || !harPath || !profile) {
  console.error('usage: node record-har.mjs URL HAR_FILE PROFILE_DIR');
  process.exit(64);
}

let context;
const giveUp = setTimeout(async () => {
  console.error('record-har: no result within 30 s');
  try { await context?.close(); } catch { /* the exit below ends it anyway */ }
  process.exit(2);
}, 30_000);

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    recordHar: { path: harPath, content: 'embed' },
    timeout: 20_000,
  });
  const page = await context.newPage();
  await page.goto(url, { timeout: 20_000 });
  await page.waitForFunction(() => window.__done === true || window.__failed, null, { timeout: 20_000 });
  const failed = await page.evaluate(() => window.__failed);
  await context.close();
  clearTimeout(giveUp);
  if (failed) {
    console.error(`record-har: the page failed: ${failed}`);
    process.exit(1);
  }
  console.log(`record-har: wrote ${harPath}`);
} catch (error) {
  console.error(`record-har: ${error.stack || error}`);
  try { await context?.close(); } catch { /* exiting */ }
  process.exit(1);
}
