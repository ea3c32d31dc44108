// What the browser benches share: JSON calls to chromedriver's WebDriver API and the server, and
// waiting for either to answer.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A JSON call; a WebDriver error in the answer is thrown with its message.
async function call(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (answer && answer.value && answer.value.error) throw new Error(`${url}: ${answer.value.message}`);
  return answer;
}

async function waitUp(url) {
  for (let i = 0; i < 100; i++) {
    try { await fetch(url); return; } catch { await sleep(100); }
  }
  throw new Error(`${url} did not come up`);
}

module.exports = { call, sleep, waitUp };
