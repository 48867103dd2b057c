//! Seeded request sequences for measuring how exact counting is (`tests/accuracy.rs`, and the
//! server's fleet replay in `bench/`). Nothing here is used by the counters.

use std::collections::HashSet;

/// An exponentially distributed gap of mean `mean_ms`, rounded to whole ms.
pub fn exp_ms(rng: &mut fastrand::Rng, mean_ms: f64) -> u64 {
    // Inverse transform sampling; +1 keeps u away from 0.
    let u = (rng.u64(0..u64::MAX) as f64 + 1.0) / (u64::MAX as f64 + 2.0);
    (-u.ln() * mean_ms).round() as u64
}

/// Thirty minutes of generated edge traffic against a per-client rule of 100 requests per
/// 60 s: the requests in time order, as (ms, client), and the clients that are abusers.
///
/// 8,000 clients, parameters written down before measuring: 97 % browsers in sessions of
/// page-view bursts (log-normal assets per page, median 12), 2 % steady API clients at
/// 0.05–0.6× the limit, 1 % abusers at 3–50× the limit for 1–20 minutes.
pub fn edge_traffic(seed: u64) -> (Vec<(u64, u64)>, HashSet<u64>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let span_ms: u64 = 30 * 60 * 1000;
    let clients = 8_000u64;
    let limit_per_ms = 100.0 / 60_000.0;
    let mut out = Vec::new();
    let mut abusers = HashSet::new();
    for key in 0..clients {
        let kind = rng.f64();
        if kind < 0.97 {
            let mut t = exp_ms(&mut rng, 15.0 * 60_000.0);
            while t < span_ms {
                for _ in 0..rng.u64(1..=12) {
                    // Log-normal burst size: median 12, sigma 0.8.
                    let z = (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
                    let assets = ((12f64.ln() + 0.8 * z).exp() as u64).clamp(1, 90);
                    for _ in 0..assets {
                        t += rng.u64(0..=100);
                        out.push((t, key));
                    }
                    t += 2_000 + exp_ms(&mut rng, 18_000.0);
                }
                t += exp_ms(&mut rng, 15.0 * 60_000.0);
            }
        } else if kind < 0.99 {
            let rate = limit_per_ms * (0.05 + 0.55 * rng.f64());
            let mut t = rng.u64(0..60_000);
            while t < span_ms {
                out.push((t, key));
                let gap = 1.0 / rate;
                t += (gap * (0.5 + rng.f64())) as u64;
            }
        } else {
            abusers.insert(key);
            let start = rng.u64(0..span_ms);
            let end = (start + rng.u64(60_000..=20 * 60_000)).min(span_ms);
            let rate = limit_per_ms * (3.0 + 47.0 * rng.f64());
            let mut t = start;
            while t < end {
                out.push((t, key));
                t += exp_ms(&mut rng, 1.0 / rate).max(1);
            }
        }
    }
    out.retain(|&(t, _)| t < span_ms);
    out.sort_unstable();
    (out, abusers)
}
