// The dashboard's first load over an emulated network: a fresh headless Chromium profile (nothing
// cached) opens the built page from a release server, with Chromium's own network emulation (latency
// added to every request, bandwidth each way) set through chromedriver, and reads when the page was
// usable (the `switchboard-mounted` Performance mark the dashboard sets after it mounted the header,
// the timeline and its controls), when the rest below them was there too (`switchboard-complete`, two
// frames later) and what came over the wire (resource timing's transfer sizes, encoded bodies plus
// headers).
//
//   ./dev run   # once, for dist/; then stop it
//   cargo build --release -p switchboard-server
//   node loadgen/bench/first-load.cjs [RUNS] [PRESET...]     # default 5 runs of 4g; e.g. 5 4g cable 3g
//
// Chromium's emulation adds the latency to each request and shares the bandwidth, but does not model
// TCP's slow start, so the figures are what a browser on such a path sees once its connection is warm.
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { call, sleep, waitUp } = require("./webdriver.cjs");

// The presets of shared/src/network (round trip in ms, kbit/s down and up); loopback: no emulation.
const PRESETS = {
  loopback: { latency: 0, down: 0, up: 0 },
  cable: { latency: 20, down: 50_000, up: 10_000 },
  "4g": { latency: 60, down: 20_000, up: 20_000 },
  "3g": { latency: 300, down: 1_600, up: 768 },
};
const runs = Number(process.argv[2] || 5);
const presets = process.argv.length > 3 ? process.argv.slice(3) : ["4g"];
const root = path.resolve(__dirname, "../..");
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "first-load-"));
const serverPort = 18312, driverPort = 19516;

// One load in a new session (a new profile: an empty cache). Returns [ms until usable, ms until
// complete, bytes, encodings, arrival times].
async function load(wd, base, preset) {
  const conditions = PRESETS[preset];
  if (!conditions) throw new Error(`unknown preset ${preset}: one of ${Object.keys(PRESETS).join(", ")}`);
  const session = (await call("POST", `${wd}/session`, { capabilities: { alwaysMatch: { "goog:chromeOptions": {
    binary: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
  } } } })).value.sessionId;
  try {
    await call("POST", `${wd}/session/${session}/chromium/network_conditions`, { network_conditions: {
      offline: false,
      latency: conditions.latency,
      // -1: no limit (loopback).
      download_throughput: conditions.down ? conditions.down * 1000 / 8 : -1,
      upload_throughput: conditions.up ? conditions.up * 1000 / 8 : -1,
    } });
    await call("POST", `${wd}/session/${session}/url`, { url: `${base}/` });
    for (let tries = 0; tries < 200; tries++) {
      const [mounted, complete, bytes, encodings, arrived] = (await call("POST", `${wd}/session/${session}/execute/sync`, {
        script: "const m = performance.getEntriesByName('switchboard-mounted')[0];" +
          "const c = performance.getEntriesByName('switchboard-complete')[0];" +
          "const s = performance.getEntriesByName('switchboard-started')[0];" +
          "const nav = performance.getEntriesByType('navigation')[0];" +
          "const res = performance.getEntriesByType('resource').filter(r => !r.name.includes('/api/') && !r.name.includes('/ws'));" +
          "return [m ? m.startTime : null, c ? c.startTime : null, nav.transferSize + res.reduce((sum, r) => sum + r.transferSize, 0)," +
          " res.map(r => r.name.split('.').pop() + ' ' + r.encodedBodySize + '/' + r.decodedBodySize).join(', ')," +
          " 'page ' + nav.responseEnd.toFixed(0) + ' ms, ' + res.map(r => r.name.split('.').pop() + ' ' + r.startTime.toFixed(0) + '/' + r.requestStart.toFixed(0) + '/' + r.responseStart.toFixed(0) + '/' + r.responseEnd.toFixed(0) + ' ms').join(', ')" +
          " + (s ? ', started ' + s.startTime.toFixed(0) + ' ms' : '')];",
        args: [],
      })).value;
      if (mounted !== null && complete !== null) return [mounted, complete, bytes, encodings, arrived];
      await sleep(50);
    }
    throw new Error("the dashboard did not mount within 10 s");
  } finally {
    await call("DELETE", `${wd}/session/${session}`).catch(() => {});
  }
}

(async () => {
  const server = spawn(path.join(root, "target/release/switchboard-server"),
    ["--addr", `127.0.0.1:${serverPort}`, "--static-dir", path.join(root, "dist")], { stdio: "ignore" });
  // Chromium's profiles go into the scratch directory, removed at the end.
  const driver = spawn("chromedriver", [`--port=${driverPort}`], { stdio: "ignore", env: { ...process.env, TMPDIR: scratch } });
  const base = `http://127.0.0.1:${serverPort}`, wd = `http://127.0.0.1:${driverPort}`;
  try {
    await waitUp(`${base}/healthz`);
    await waitUp(`${wd}/status`);
    for (const preset of presets) {
      const times = [], completes = [];
      let last;
      for (let run = 1; run <= runs; run++) {
        const [ms, complete, bytes, encodings, arrived] = await load(wd, base, preset);
        times.push(ms);
        completes.push(complete);
        last = { bytes, encodings };
        console.log(`${preset} run ${run}: usable after ${ms.toFixed(0)} ms, complete after ${complete.toFixed(0)} ms, ${(bytes / 1000).toFixed(1)} KB on the wire; arrived: ${arrived}`);
      }
      const sorted = [...times].sort((a, b) => a - b);
      const whole = [...completes].sort((a, b) => a - b);
      console.log(`${preset}: usable: median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms, worst ${sorted[sorted.length - 1].toFixed(0)} ms;` +
        ` complete: median ${whole[Math.floor(whole.length / 2)].toFixed(0)} ms, worst ${whole[whole.length - 1].toFixed(0)} ms` +
        ` over ${runs} first loads; ${(last.bytes / 1000).toFixed(1)} KB (${last.encodings}: encoded/decoded bytes)`);
    }
  } finally {
    driver.kill();
    server.kill();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
})();
