// The timeline's frame time under a firehose: the built dashboard in headless Chromium (through
// chromedriver's WebDriver API), against a server sending 200 events a second on every lane, read from
// the page's own "draws in" readout (a smoothed time per frame) every 5 s, with the marks it drew.
//
//   cargo build --release -p switchboard-server && ./dev run   # once, for dist/ and the server
//   node loadgen/bench/frame-time.cjs [SECONDS] [PRESET]      # default 60 s on loopback; e.g. 60 3g
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { call, sleep, waitUp } = require("./webdriver.cjs");

const seconds = Number(process.argv[2] || 60);
const preset = process.argv[3] || "";
const root = path.resolve(__dirname, "../..");
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "frame-time-"));
const serverPort = 18311, driverPort = 19515;

(async () => {
  const server = spawn(path.join(root, "target/release/switchboard-server"),
    ["--addr", `127.0.0.1:${serverPort}`, "--static-dir", path.join(root, "dist"), "--traffic", "firehose"],
    { stdio: "ignore" });
  // Chromium's profile goes into the scratch directory, removed at the end.
  const driver = spawn("chromedriver", [`--port=${driverPort}`], { stdio: "ignore", env: { ...process.env, TMPDIR: scratch } });
  const base = `http://127.0.0.1:${serverPort}`, wd = `http://127.0.0.1:${driverPort}`;
  let session;
  try {
    await waitUp(`${base}/healthz`);
    await waitUp(`${wd}/status`);
    session = (await call("POST", `${wd}/session`, { capabilities: { alwaysMatch: { "goog:chromeOptions": {
      binary: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1500"],
    } } } })).value.sessionId;
    await call("POST", `${wd}/session/${session}/url`, { url: `${base}/` });
    if (preset) {
      await call("POST", `${base}/api/network`, { lane: "all", preset });
    }
    const readings = [];
    for (let at = 5; at <= seconds; at += 5) {
      await sleep(5000);
      const [draws, marks] = (await call("POST", `${wd}/session/${session}/execute/sync`, {
        script: "const c = document.querySelector(\"[data-testid='timeline-canvas']\");" +
          "return [document.body.innerText.match(/draws in ([0-9.]+) ms/)?.[1], c?.dataset.marks];",
        args: [],
      })).value;
      readings.push(Number(draws));
      console.log(`${at} s\tdraws in ${draws} ms\t${marks} marks drawn`);
    }
    const sorted = [...readings].sort((a, b) => a - b);
    console.log(`frame time: median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms over ${seconds} s (budget 16 ms)`);
  } finally {
    if (session) await call("DELETE", `${wd}/session/${session}`).catch(() => {});
    driver.kill();
    server.kill();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
})();
