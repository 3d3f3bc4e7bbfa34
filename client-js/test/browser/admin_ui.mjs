// The Socket.IO Admin UI (the npm package's page, served by the chat demo at /admin-ui/)
// in Chromium against our server: log in, see a chat client, watch its events, disconnect it.
// Run by tests/live/test_admin_ui.py: node admin_ui.mjs <server url> <username> <password>.
// Prints one JSON line of what it saw; exits non-zero when a step fails.
import { launch } from "./helpers.mjs";

const [url, username, password, shots] = process.argv.slice(2);
const T = { timeout: 15000 };
const seen = { steps: [] };
const step = (name, extra = {}) => seen.steps.push({ name, ...extra });

const browser = await launch();
try {
  const ctx = await browser.newContext();
  // The UI's page links fonts from public CDNs: tests talk only to 127.0.0.1.
  await ctx.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());

  // A chat user, in the demo's own page.
  const chat = await ctx.newPage();
  await chat.goto(`${url}/?nick=alice&room=kitchen`);
  await chat.waitForFunction(() => window.chat && window.chat.socket.connected, null, T);
  await chat.waitForFunction(() => window.chat.socket.io.engine.transport.name === "websocket", null, T);
  const aliceId = await chat.evaluate(() => window.chat.socket.id);
  step("chat connected", { aliceId });

  const admin = await ctx.newPage();
  admin.on("pageerror", (e) => console.error("pageerror:", e.message));
  await admin.goto(`${url}/admin-ui/`);
  await admin.getByLabel("Server URL").fill(url);
  await admin.getByLabel("Username").fill(username);
  await admin.getByLabel("Password").fill(password);
  await admin.getByRole("button", { name: "Connect" }).click();
  if (shots) await admin.screenshot({ path: `${shots}/1-login.png` });
  await admin.getByLabel("Server URL").waitFor({ state: "hidden", ...T });
  step("logged in");

  await admin.goto(`${url}/admin-ui/#/sockets`);
  const row = admin.locator("tr", { hasText: aliceId });
  await row.waitFor(T);
  if (shots) await admin.screenshot({ path: `${shots}/2-sockets.png` });
  step("socket listed", { row: (await row.innerText()).replace(/\s+/g, " ") });

  // The socket's page: its transport and its rooms (its own id and the chat room).
  await admin.goto(`${url}/admin-ui/#/n/%2F/sockets/${aliceId}`);
  await admin.getByText("kitchen", { exact: true }).first().waitFor(T);
  if (shots) await admin.screenshot({ path: `${shots}/3-socket.png`, fullPage: true });
  const details = (await admin.locator("main").innerText()).replace(/\s+/g, " ");
  step("socket details", { details });

  // Alice moves to another room from the chat: her page in the UI follows at once
  // (rooms and data), with no stats tick in between (the test's server sends stats hourly).
  await chat.evaluate(() => window.chat.socket.emit("join", "attic"));
  await admin.waitForFunction(
    () => {
      const text = document.querySelector("main").innerText.replace(/\s+/g, " ");
      const rooms = (text.split("Rooms ID ")[1] || "").split(" Rows per page")[0];
      return rooms.includes("attic") && !rooms.includes("kitchen") && text.includes('"room": "attic"');
    },
    null,
    T,
  );
  if (shots) await admin.screenshot({ path: `${shots}/3b-moved.png`, fullPage: true });
  step("moved", { details: (await admin.locator("main").innerText()).replace(/\s+/g, " ") });

  // The charts' counts as the UI holds them (its store), from the stats sent at login.
  const totals = await admin.evaluate(() => {
    const sums = {};
    for (const e of document.getElementById("app").__vue__.$store.state.main.aggregatedEvents) {
      sums[e.type] = (sums[e.type] || 0) + e.count;
    }
    return sums;
  });
  step("charts", { totals });

  // Development mode: what alice sends and is sent shows on the Events page.
  await admin.goto(`${url}/admin-ui/#/events/`);
  await chat.evaluate(() => window.chat.socket.emit("nick", "alice-the-cook"));
  const received = admin.locator("tr", { hasText: "Event received" }).filter({ hasText: "nick" });
  await received.first().waitFor(T);
  if (shots) await admin.screenshot({ path: `${shots}/4-events.png`, fullPage: true });
  step("events", { events: (await admin.locator("main").innerText()).replace(/\s+/g, " ") });

  // Disconnect alice from her socket's page.
  await admin.goto(`${url}/admin-ui/#/n/%2F/sockets/${aliceId}`);
  await admin.getByText("attic", { exact: true }).first().waitFor(T);
  await chat.evaluate(() => {
    window.reasons = [];
    window.chat.socket.on("disconnect", (reason) => window.reasons.push(reason));
  });
  // The Details card's Status rows: the client's (with its disconnect button) comes first.
  await admin.locator("tr", { hasText: "Status" }).first().locator("button").click();
  await chat.waitForFunction(() => window.reasons.length > 0, null, T);
  step("disconnected from the UI", { reasons: await chat.evaluate(() => window.reasons) });
  if (shots) await admin.screenshot({ path: `${shots}/5-after.png`, fullPage: true });
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}
