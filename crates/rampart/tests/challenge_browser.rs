//! A real browser through a challenge: headless Chromium loads a page of a zone under
//! attack, solves the challenge by itself and ends on the origin's content; loaded again
//! with the same profile within the clearance's life, it is not challenged. Both of the
//! page's hashes are taken: `shop.test` over plain HTTP is not a secure context, so the page
//! hashes in JavaScript; `localhost` is, so WebCrypto is there to be measured against it.
//! The solve times the page reports are printed (and logged by rampart).

mod common;

use common::browser::chromium;
use common::{Behaviour, Origin, Rampart, TempDir};

/// What Chromium shows after loading `url` with the profile in `profile`, given time to
/// solve the challenge and follow the redirect.
fn load(url: &str, profile: &std::path::Path) -> String {
    let profile = format!("--user-data-dir={}", profile.display());
    chromium(
        url,
        &[
            "--virtual-time-budget=30000",
            "--host-resolver-rules=MAP shop.test 127.0.0.1",
            &profile,
            "--dump-dom",
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_chromium_solves_the_challenge_and_keeps_its_clearance() {
    let origin = Origin::start(Behaviour::Raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 38\r\n\r\n<html><body>origin content</body></html>"
            .to_vec(),
    ))
    .await;
    let zones = format!(
        "[[zone]]\nname = \"shop\"\nhosts = [\"shop.test\", \"localhost\"]\norigin = \"http://{}\"\nbrowser_integrity_check = true\nsecurity_level = \"under_attack\"\n",
        origin.addr
    );
    let r = Rampart::start_zones("", &zones).await;
    let port = r.addr.port();
    let dir = TempDir::new("chromium");
    for host in ["shop.test", "localhost"] {
        let url = format!("http://{host}:{port}/");
        let profile = dir.join(host);
        let first = {
            let (url, profile) = (url.clone(), profile.clone());
            tokio::task::spawn_blocking(move || load(&url, &profile))
                .await
                .unwrap()
        };
        assert!(first.contains("origin content"), "{host}: {first}");
        // The log has the challenge, the solution (with the time the page took) and the
        // page from the origin.
        let lines = r.log_lines(3).await;
        let solved = lines
            .iter()
            .rev()
            .find(|l| l["ClientRequestHost"] == host && l["EdgeResponseStatus"] == 303)
            .unwrap_or_else(|| panic!("no solution from {host}: {lines:#?}"));
        let reason = solved["ErrorReason"].as_str().unwrap();
        assert!(reason.starts_with("challenge solved in "), "{reason}");
        println!("{host}: {reason} (difficulty 16)");
        assert!(
            lines
                .iter()
                .any(|l| l["ClientRequestHost"] == host && l["SecurityAction"] == "js_challenge")
        );

        // Again, within the clearance's life: straight to the origin.
        let count = r.log_lines(0).await.len();
        let again = tokio::task::spawn_blocking(move || load(&url, &profile))
            .await
            .unwrap();
        assert!(again.contains("origin content"), "{again}");
        let lines = r.log_lines(count + 1).await;
        let new: Vec<_> = lines[count..]
            .iter()
            .filter(|l| l["ClientRequestPath"] == "/")
            .collect();
        assert!(!new.is_empty());
        assert!(
            new.iter().all(|l| l["EdgeResponseStatus"] == 200),
            "challenged again: {new:#?}"
        );
    }
}
