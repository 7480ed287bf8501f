// Watches pummel's live dashboard in Debian's Chromium, driven by playwright-core: the browser
// side of tests/cli/dashboard.rs.
//
//   node tests/browser/watch-dashboard.mjs URL
//
// Opens URL headless, waits until the requests chart has points, notes how many, waits until
// it has more (the run goes on), then waits until the final report replaces the charts. Prints
// one JSON line: {"first": N, "later": M, "report": true, "title": "..."} and exits 0. Every
// wait is bounded: after 40 s in all it prints what it saw and exits 2.

import { chromium } from 'playwright-core';

const [url] = process.argv.slice(2);
if (!url) {
  console.error('usage: node watch-dashboard.mjs URL');
  process.exit(64);
}

const seen = { first: 0, later: 0, report: false, title: '' };
let browser;
const giveUp = setTimeout(async () => {
  console.log(JSON.stringify(seen));
  console.error('watch-dashboard: not done within 40 s');
  try { await browser?.close(); } catch { /* the exit below ends it anyway */ }
  process.exit(2);
}, 40_000);

const points = (page) => page.evaluate(() => Number(document.querySelector('#requests svg')?.dataset.points || 0));

try {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    timeout: 20_000,
  });
  const page = await browser.newPage();
  await page.goto(url, { timeout: 20_000 });
  await page.waitForFunction(() => Number(document.querySelector('#requests svg')?.dataset.points || 0) >= 1, null, { timeout: 20_000 });
  seen.first = await points(page);
  await page.waitForFunction((n) => Number(document.querySelector('#requests svg')?.dataset.points || 0) > n, seen.first, { timeout: 20_000 });
  seen.later = await points(page);
  // The report replaces the live page: its title starts with "pummel report".
  await page.waitForFunction(() => document.title.startsWith('pummel report'), null, { timeout: 30_000 });
  seen.report = true;
  seen.title = await page.title();
  console.log(JSON.stringify(seen));
  clearTimeout(giveUp);
  await browser.close();
  process.exit(0);
} catch (error) {
  console.log(JSON.stringify(seen));
  console.error(`watch-dashboard: ${error.message}`);
  try { await browser?.close(); } catch { /* exiting anyway */ }
  process.exit(1);
}
