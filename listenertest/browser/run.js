// run.js opens the test page in headless Chromium and waits for its
// verdict. Usage: node run.js PAGE_URL [SCREENSHOT.png]
// Exit status 0 when the page reports success; the page's steps are
// printed as one JSON line either way.
'use strict';
const { chromium } = require('playwright-core');

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

async function main() {
  const [pageURL, screenshot] = process.argv.slice(2);
  if (!pageURL) throw new Error('usage: node run.js PAGE_URL [SCREENSHOT.png]');
  const browser = await chromium.launch({ executablePath, args, headless: true, timeout: 30000 });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => console.error('console:', m.text()));
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(pageURL, { timeout: 15000 });
    const handle = await page.waitForFunction(() => window.heraldResult, null, { timeout: 30000 });
    const result = await handle.jsonValue();
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify(result));
    return result.ok ? 0 : 1;
  } finally {
    await browser.close();
  }
}

main().then((code) => process.exit(code), (err) => {
  console.error(err && err.stack || String(err));
  process.exit(2);
});
