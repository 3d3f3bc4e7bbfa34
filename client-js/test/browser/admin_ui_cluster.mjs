// The Admin UI's page in Chromium, logged in to node A of a two-node cluster: both servers listed.
// Run by tests/live/test_admin_ui.py: node admin_ui_cluster.mjs <node A url> <user> <password>.
import { launch } from "./helpers.mjs";

const [urlA, username, password] = process.argv.slice(2);
const T = { timeout: 15000 };
const browser = await launch();
try {
  const ctx = await browser.newContext();
  await ctx.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
  const admin = await ctx.newPage();
  await admin.goto(`${urlA}/admin-ui/`);
  await admin.getByLabel("Server URL").fill(urlA);
  await admin.getByLabel("Username").fill(username);
  await admin.getByLabel("Password").fill(password);
  await admin.getByRole("button", { name: "Connect" }).click();
  await admin.getByLabel("Server URL").waitFor({ state: "hidden", ...T });

  await admin.goto(`${urlA}/admin-ui/#/servers/`);
  await admin.locator("tr", { hasText: "node-a" }).waitFor(T);
  await admin.locator("tr", { hasText: "node-b" }).waitFor(T);
  const servers = (await admin.locator("main").innerText()).replace(/\s+/g, " ");

  console.log(JSON.stringify({ servers }));
} finally {
  await browser.close();
}
