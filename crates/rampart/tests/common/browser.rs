//! Headless Chromium (Debian's `chromium`, which scripts/test installs) for the tests that
//! need a real browser.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs Chromium headless on `url` with `args`; its standard output. Killed after a minute.
pub fn chromium(url: &str, args: &[&str]) -> String {
    let mut child = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            // A container's small /dev/shm would crash it.
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            // No connections of its own: the machine has no network beyond loopback.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium: run scripts/test, which installs Debian's chromium, or apt-get install chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within a minute on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
