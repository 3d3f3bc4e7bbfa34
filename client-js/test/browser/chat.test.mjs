// The chat demo in Chromium: transports, fallbacks, reconnection, two users in a room.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromiumSkip, launch, startChat, startNoWsProxy } from "./helpers.mjs";
import { waitFor } from "../harness.mjs";

const skip = chromiumSkip();

describe("chat demo in Chromium", { skip }, () => {
  let browser, chat;
  const T = { timeout: 15000 };

  before(async () => {
    [browser, chat] = await Promise.all([launch(), startChat()]);
  });
  after(async () => {
    if (browser) await browser.close();
    if (chat) await chat.stop();
  });

  async function page(url, init) {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    p.on("pageerror", (e) => console.error("pageerror:", e.message));
    if (init) await p.addInitScript(init);
    await p.goto(url);
    return p;
  }
  const state = (p, s) => p.waitForFunction((s) => document.getElementById("state").textContent === s, s, T);
  const transport = (p, t) =>
    p.waitForFunction((t) => document.getElementById("transport").textContent === t, t, T);
  const send = async (p, text) => {
    await p.fill("#text", text);
    await p.press("#text", "Enter");
  };
  const hasMessage = (p, text) =>
    p.waitForFunction(
      (text) => [...document.querySelectorAll("#messages li.message .text")].some((e) => e.textContent === text),
      text,
      T,
    );

  it("connects and ends on WebSocket", async () => {
    const p = await page(chat.url + "/?nick=ann&room=ws-room");
    await state(p, "connected");
    await transport(p, "websocket");
    await send(p, "hello over websocket");
    await hasMessage(p, "hello over websocket");
    await p.waitForFunction(() => document.querySelector("#rooms li[data-room='ws-room']"), null, T);
    await p.context().close();
  });

  it("works on polling through a proxy that refuses WebSocket upgrades", async () => {
    const proxy = await startNoWsProxy(chat.url);
    try {
      const p = await page(proxy.url + "/?nick=bob&room=proxy-room");
      await state(p, "connected");
      await send(p, "hello through the proxy");
      await hasMessage(p, "hello through the proxy");
      // the upgrade is attempted and refused; the page stays on polling
      await waitFor(() => proxy.refused() >= 1, "the WebSocket upgrade to be attempted");
      await send(p, "after the refused upgrade");
      await hasMessage(p, "after the refused upgrade");
      assert.equal(await p.textContent("#transport"), "polling");
      await p.context().close();
    } finally {
      proxy.close();
    }
  });

  it("works on polling where window.WebSocket is undefined", async () => {
    const p = await page(chat.url + "/?nick=cat&room=nows", () => {
      window.WebSocket = undefined;
    });
    await state(p, "connected");
    await send(p, "no websocket here");
    await hasMessage(p, "no websocket here");
    assert.equal(await p.textContent("#transport"), "polling");
    await p.context().close();
  });

  it("reconnects after a server restart and delivers messages sent while offline", async () => {
    const p = await page(chat.url + "/?nick=dan&room=restart-room");
    await state(p, "connected");
    await transport(p, "websocket");
    await chat.stop();
    await p.waitForFunction(() => document.getElementById("state").textContent !== "connected", null, T);
    await send(p, "sent while offline");
    await chat.start();
    await state(p, "connected");
    await hasMessage(p, "sent while offline");
    await transport(p, "websocket");
    await p.context().close();
  });

  it("two pages chat in the same room, one forced onto polling", async () => {
    const a = await page(chat.url + "/?nick=eve&room=shared");
    const b = await page(chat.url + "/?nick=fay&room=shared&transports=polling");
    await Promise.all([state(a, "connected"), state(b, "connected")]);
    await transport(a, "websocket");
    assert.equal(await b.textContent("#transport"), "polling");
    await a.waitForFunction(() => document.getElementById("messages").textContent.includes("fay joined shared"), null, T);
    // typing indicator
    await b.type("#text", "typ");
    await a.waitForFunction(() => document.getElementById("typing").textContent.includes("fay"), null, T);
    await send(b, "hi from polling");
    await hasMessage(a, "hi from polling");
    await hasMessage(b, "hi from polling");
    await send(a, "hi from websocket");
    await hasMessage(b, "hi from websocket");
    await a.waitForFunction(() => !document.getElementById("typing").textContent.includes("fay"), null, T);
    await b.context().close();
    await a.waitForFunction(() => document.getElementById("messages").textContent.includes("fay left shared"), null, T);
    await a.screenshot({ path: process.env.CHAT_SCREENSHOT || "/tmp/chat-demo.png" });
    await a.context().close();
  });
});
