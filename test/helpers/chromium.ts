import { existsSync } from "node:fs";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

/** Debian's Chromium (the `chromium` package, which .ci/run installs); CHROMIUM_BIN names another. */
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

/**
 * Starts headless Chromium for the browser tests; throws (never skips) when it is not installed.
 * Two pages of this one browser reach each other over WebRTC on this machine with host candidates
 * alone: loopback candidates are allowed and mDNS names (which headless Chromium cannot resolve
 * back) are turned off, so no STUN server is needed.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}: install the Debian package chromium (or set CHROMIUM_BIN)`);
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      // Root in a container has no user namespaces for the sandbox.
      "--no-sandbox",
      "--disable-dev-shm-usage",
      "--disable-gpu",
      "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns",
    ],
  });
}

/**
 * How often a wait reads a page: by time, since the default (animation frames) never comes to a tab
 * in the background, which all but one of a test's tabs are.
 */
export const POLL_MS = 100;

/** Waits until the page's `document.body.dataset.state` is `state` (the demo and the lobby set it). */
export async function pageState(page: Page, state: string, timeoutMs = 20_000): Promise<void> {
  try {
    await page.waitForFunction((wanted: string) => document.body.dataset["state"] === wanted, { timeout: timeoutMs, polling: POLL_MS }, state);
  } catch (error) {
    const now = await page.evaluate(() => ({ state: document.body.dataset["state"], log: document.getElementById("log")?.textContent }));
    throw new Error(`page ${page.url()} did not reach state ${state}: ${JSON.stringify(now)} (${String(error)})`);
  }
}
