// The chat demo as a newcomer sees it: a greeting, their own messages marked, times on messages.
// Takes a screenshot (kept in a temp dir, path printed) and checks the page content behind it.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromiumSkip, launch, startChat } from "./helpers.mjs";

const skip = chromiumSkip();

describe("chat demo greets and marks", { skip }, () => {
  let browser, chat;
  const T = { timeout: 15000 };

  before(async () => {
    [browser, chat] = await Promise.all([launch(), startChat()]);
  });
  after(async () => {
    if (browser) await browser.close();
    if (chat) await chat.stop();
  });

  async function open(query) {
    const ctx = await browser.newContext({ viewport: { width: 900, height: 520 } });
    const p = await ctx.newPage();
    p.on("pageerror", (e) => console.error("pageerror:", e.message));
    await p.goto(chat.url + "/" + query);
    await p.waitForFunction(() => document.getElementById("state").textContent === "connected", null, T);
    return p;
  }
  async function send(p, text) {
    await p.fill("#text", text);
    await p.press("#text", "Enter");
  }
  const rows = (p) =>
    p.$$eval("#messages li.message", (lis) =>
      lis.map((li) => ({
        mine: li.classList.contains("mine"),
        nick: li.querySelector(".nick").textContent,
        text: li.querySelector(".text").textContent,
        time: li.querySelector("time")?.textContent ?? "",
        iso: li.querySelector("time")?.dateTime ?? "",
      })),
    );

  it("greets, marks own messages, shows times; screenshot of two users", async () => {
    const a = await open("?nick=ann&room=demo");
    const b = await open("?nick=bob&room=demo&transports=polling");
    const greeting = await a.textContent("#greeting");
    assert.match(greeting, /^Welcome, ann!/);
    assert.match(greeting, /second tab/);
    assert.match(greeting, /\?transports=polling/);

    const before = Date.now();
    await send(a, "hello from ann");
    await a.waitForFunction(() => document.querySelectorAll("#messages li.message").length === 1, null, T);
    await b.waitForFunction(() => document.querySelectorAll("#messages li.message").length === 1, null, T);
    await send(b, "hi ann, bob here");
    for (const p of [a, b]) {
      await p.waitForFunction(() => document.querySelectorAll("#messages li.message").length === 2, null, T);
    }

    const [ra, rb] = [await rows(a), await rows(b)];
    assert.deepEqual(
      ra.map((r) => [r.mine, r.nick, r.text]),
      [
        [true, "ann (you)", "hello from ann"],
        [false, "bob", "hi ann, bob here"],
      ],
    );
    assert.deepEqual(
      rb.map((r) => [r.mine, r.nick, r.text]),
      [
        [false, "ann", "hello from ann"],
        [true, "bob (you)", "hi ann, bob here"],
      ],
    );
    for (const r of [...ra, ...rb]) {
      assert.match(r.time, /\d{1,2}:\d{2}:\d{2}/, `a visible time on ${r.text}`);
      const at = Date.parse(r.iso);
      // the server's timestamp: taken between sending and now (clock of this same machine, 2 s slack)
      assert.ok(at >= before - 2000 && at <= Date.now() + 2000, `time ${r.iso} of ${r.text}`);
    }
    // own messages look different: the highlight is a real computed style, not only a class
    const bg = await a.$$eval("#messages li.message", (lis) => lis.map((li) => getComputedStyle(li).backgroundColor));
    assert.notEqual(bg[0], bg[1]);
    // notices carry times too
    assert.match(await a.textContent("#messages li.notice"), /\d{1,2}:\d{2}:\d{2}.*joined demo/);

    const dir = mkdtempSync(join(tmpdir(), "realtime-demo-"));
    const shot = join(dir, "chat.png");
    await a.screenshot({ path: shot });
    assert.ok(statSync(shot).size > 5000, "a non-trivial screenshot");
    console.log(`screenshot: ${shot}`);
    await a.context().close();
    await b.context().close();
  });
});

describe("examples/starlette_app in Chromium", { skip }, () => {
  let browser, app;
  const T = { timeout: 15000 };

  before(async () => {
    [browser, app] = await Promise.all([launch(), startChat(["-m", "examples.starlette_app.app"])]);
  });
  after(async () => {
    if (browser) await browser.close();
    if (app) await app.stop();
  });

  it("clears its input, shows its own messages and renders notices as text", async () => {
    const ctx = await browser.newContext();
    const [a, b] = [await ctx.newPage(), await ctx.newPage()];
    for (const p of [a, b]) {
      p.on("pageerror", (e) => console.error("pageerror:", e.message));
      await p.goto(app.url + "/");
      await p.waitForFunction(() => typeof socket !== "undefined" && socket.connected, null, T);
    }
    const bName = await b.textContent("#me");
    await b.fill("#m", "hello from b");
    await b.press("#m", "Enter");
    assert.equal(await b.inputValue("#m"), "", "the input is cleared after sending");
    await b.waitForFunction(() => document.querySelector("#log li.mine")?.textContent === "me: hello from b ✓", null, T);
    await a.waitForFunction(
      (who) => [...document.querySelectorAll("#log li.message")].some((li) => li.textContent === who + ": hello from b"),
      bName,
      T,
    );
    const res = await fetch(app.url + "/rooms/lobby/notify", { method: "POST", body: JSON.stringify({ text: "hi all" }) });
    assert.equal(res.status, 200);
    for (const p of [a, b]) {
      await p.waitForFunction(() => document.querySelector("#log li.notice")?.textContent === "notice: hi all", null, T);
    }
    await ctx.close();
  });
});
