"use strict";
(() => {
  const main = document.getElementById("challenge");
  const token = main.dataset.token;
  const bits = Number(main.dataset.difficulty);
  const status = document.getElementById("status");
  const bar = document.getElementById("progress");
  const say = (text) => { status.textContent = text; };
  const stop = (id) => {
    document.getElementById(id).hidden = false;
    bar.hidden = true;
  };
  // A new challenge seconds after this tab solved one: the clearance cookie did not come
  // back, so solving again would loop. Say so instead.
  let last = 0;
  try {
    // A new challenge that answers a refused solution (expired, say) is no such sign.
    if (main.dataset.retry === "1") sessionStorage.removeItem("rampart-solved");
    last = Number(sessionStorage.getItem("rampart-solved")) || 0;
  } catch (e) { /* storage off */ }
  if (!navigator.cookieEnabled || Date.now() - last < 15000) {
    say("Your browser did not keep the cookie that lets you in.");
    stop("cookies");
    return;
  }
  const zeros = (h) => {
    let n = 0;
    for (const b of h) {
      if (b === 0) { n += 8; continue; }
      return n + Math.clz32(b) - 24;
    }
    return n;
  };
  // SHA-256 in JavaScript, for pages served over plain HTTP (WebCrypto exists only in secure
  // contexts) and browsers without it.
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const W = new Uint32Array(64);
  const sha256 = (bytes) => {
    const blocks = Math.ceil((bytes.length + 9) / 64);
    const m = new Uint8Array(blocks * 64);
    m.set(bytes);
    m[bytes.length] = 0x80;
    const bitLen = bytes.length * 8;
    m[m.length - 4] = bitLen >>> 24; m[m.length - 3] = bitLen >>> 16;
    m[m.length - 2] = bitLen >>> 8; m[m.length - 1] = bitLen;
    const h = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    for (let off = 0; off < m.length; off += 64) {
      for (let i = 0; i < 16; i++) {
        const j = off + i * 4;
        W[i] = (m[j] << 24) | (m[j + 1] << 16) | (m[j + 2] << 8) | m[j + 3];
      }
      for (let i = 16; i < 64; i++) {
        const a = W[i - 15], b = W[i - 2];
        const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
        const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      let [a, b, c, d, e, f, g, k] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
    }
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) {
      out[i * 4] = h[i] >>> 24; out[i * 4 + 1] = h[i] >>> 16;
      out[i * 4 + 2] = h[i] >>> 8; out[i * 4 + 3] = h[i];
    }
    return out;
  };
  const encoder = new TextEncoder();
  const input = (n) => encoder.encode(token + ":" + n);
  const subtle = window.isSecureContext && window.crypto && crypto.subtle;
  const expected = 2 ** bits;
  const started = performance.now();
  // Counters [from, from + count) hashed in JavaScript: the solution, or -1.
  const inScript = (from, count) => {
    for (let n = from; n < from + count; n++) {
      if (zeros(sha256(input(n))) >= bits) return n;
    }
    return -1;
  };
  // The same with WebCrypto: native, so fast with the JIT off, but each call is
  // asynchronous, so they go in batches.
  const inCrypto = async (from, count) => {
    const work = [];
    for (let n = from; n < from + count; n++) work.push(subtle.digest("SHA-256", input(n)));
    const digests = await Promise.all(work);
    for (let i = 0; i < count; i++) {
      if (zeros(new Uint8Array(digests[i])) >= bits) return from + i;
    }
    return -1;
  };
  const search = async () => {
    // Measure both on the first counters (which are searched all the same) and keep the
    // faster: JavaScript where the JIT runs, WebCrypto where it is off (Lockdown Mode, some
    // privacy browsers), where a script runs ten times slower.
    let next = 0;
    let useCrypto = false;
    if (subtle) {
      // The first counters warm the JIT up; the next 1,024 are timed.
      let found = inScript(0, 1024);
      if (found >= 0) return found;
      let t = performance.now();
      found = inScript(1024, 1024);
      if (found >= 0) return found;
      const script = performance.now() - t;
      t = performance.now();
      found = await inCrypto(2048, 1024);
      if (found >= 0) return found;
      useCrypto = performance.now() - t < script;
      next = 3072;
    }
    const batch = useCrypto ? 256 : 2048;
    for (let base = next, round = 1; ; base += batch, round++) {
      const found = useCrypto ? await inCrypto(base, batch) : inScript(base, batch);
      if (found >= 0) return found;
      // The chance of having found it by now, which is what a progress bar can honestly show.
      const done = 1 - Math.exp(-(base + batch) / expected);
      bar.value = Math.min(done, 0.99);
      if (round % 16 === 0) say(`Checking your browser… ${Math.round(done * 100)}%`);
      if (!useCrypto) await new Promise((resolve) => setTimeout(resolve, 0));
    }
  };
  search().then((counter) => {
    bar.value = 1;
    say("Done: taking you to the page.");
    try { sessionStorage.setItem("rampart-solved", String(Date.now())); } catch (e) { /* storage off */ }
    document.getElementById("counter").value = String(counter);
    document.getElementById("elapsed").value = String(Math.round(performance.now() - started));
    document.getElementById("solution").submit();
  }, (e) => {
    say(`Your browser could not finish the check: ${e}.`);
    stop("failed");
  });
})();
