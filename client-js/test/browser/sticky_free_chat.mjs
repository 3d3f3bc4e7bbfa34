// Two Chromium pages chat through a round-robin balancer (tests/live/test_sticky_free.py).
// Usage: node test/browser/sticky_free_chat.mjs <balancer url> <websocket: true|false>
// With "false", window.WebSocket is removed before the page loads: the client stays on
// long-polling, whose requests nginx spreads over every node. Prints one JSON line:
// each page's transport, reconnects and disconnects seen once connected, and the
// messages a page did not get. Every wait is bounded.
import { launch } from "./helpers.mjs";

const [url, websocketArg] = process.argv.slice(2);
const websocket = websocketArg === "true";
const T = { timeout: 20000 };
const MESSAGES = 8; // per page, alternating
const room = `sticky-${Math.random().toString(36).slice(2, 8)}`;

const browser = await launch();
try {
  const open = async (nick) => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.on("pageerror", (e) => console.error("pageerror:", e.message));
    if (!websocket) await page.addInitScript(() => { window.WebSocket = undefined; });
    await page.goto(`${url}/?nick=${nick}&room=${room}`);
    await page.waitForFunction(() => document.getElementById("state").textContent === "connected", null, T);
    // From here on, any disconnect or reconnect is counted.
    await page.evaluate(() => {
      const seen = (window.seen = { disconnects: 0, reconnects: 0, attempts: 0 });
      const s = window.chat.socket;
      s.on("disconnect", () => seen.disconnects++);
      s.on("connect", () => seen.reconnects++);
      s.io.on("reconnect_attempt", () => seen.attempts++);
    });
    return page;
  };
  const pages = [await open("ann"), await open("bob")];
  const want = websocket ? "websocket" : "polling";
  for (const p of pages) {
    await p.waitForFunction((t) => document.getElementById("transport").textContent === t, want, T);
  }
  await pages[0].waitForFunction(() => document.getElementById("messages").textContent.includes("bob joined"), null, T);
  const texts = [];
  for (let i = 0; i < MESSAGES * 2; i++) {
    const text = `message ${i} from ${i % 2 ? "bob" : "ann"}`;
    texts.push(text);
    const p = pages[i % 2];
    await p.fill("#text", text);
    await p.press("#text", "Enter");
    // each message must reach the other page before the next is sent
    await pages[(i + 1) % 2]
      .waitForFunction(
        (text) => [...document.querySelectorAll("#messages li.message .text")].some((e) => e.textContent === text),
        text,
        T,
      )
      .catch(() => {});
  }
  const missing = [];
  const transports = [];
  const reconnects = [];
  const disconnects = [];
  for (const [i, p] of pages.entries()) {
    const got = await p.evaluate(() =>
      [...document.querySelectorAll("#messages li.message .text")].map((e) => e.textContent),
    );
    for (const t of texts) if (!got.includes(t)) missing.push(`page ${i}: ${t}`);
    transports.push(await p.textContent("#transport"));
    const seen = await p.evaluate(() => window.seen);
    reconnects.push(seen.reconnects + seen.attempts);
    disconnects.push(seen.disconnects);
  }
  console.log(JSON.stringify({ transports, reconnects, disconnects, missing, messages: texts.length }));
} finally {
  await browser.close();
}
