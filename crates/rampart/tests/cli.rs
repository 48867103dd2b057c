//! The `rampart` command: `check`, `rules check`, `rules test`, and graceful shutdown of `run`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::free_port;

fn rampart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
}

/// A file with `contents` in a directory of its own, removed when this is dropped.
struct Temp {
    path: std::path::PathBuf,
    _dir: common::TempDir,
}

fn temp(name: &str, contents: &str) -> Temp {
    let dir = common::TempDir::new("cli");
    Temp {
        path: dir.file(name, contents),
        _dir: dir,
    }
}

impl std::ops::Deref for Temp {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.path
    }
}

impl AsRef<std::path::Path> for Temp {
    fn as_ref(&self) -> &std::path::Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Temp {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

#[test]
fn check_reports_every_problem_with_file_line_column_and_key() {
    let p = temp(
        "bad.toml",
        "[server]\nlisten = [\"127.0.0.1:1\"]\nkeepalive_timout = \"5s\"\n\n[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n\n[[zone.custom_rule]]\nexpression = 'http.request.uri.paht eq \"/\"'\naction = \"block\"\n",
    );
    let out = rampart().args(["check", "-c"]).arg(&p).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let file = p.display().to_string();
    assert!(err.contains(&format!("{file}:3:1: `server.keepalive_timout`: unknown key `keepalive_timout`; did you mean `keepalive_timeout`?")), "{err}");
    assert!(
        err.contains(&format!(
            "{file}:11:14: `zone[0].custom_rule[0].expression`"
        )),
        "{err}"
    );
    assert!(
        err.contains("did you mean `http.request.uri.path`?") && err.contains('^'),
        "{err}"
    );
    assert!(err.contains("2 errors in the configuration"), "{err}");
}

#[test]
fn check_accepts_a_good_config() {
    let p = temp(
        "good.toml",
        "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n",
    );
    let out = rampart().args(["check", "-c"]).arg(&p).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 zone)"));
}

#[test]
fn run_refuses_a_broken_config_and_a_missing_file() {
    let p = temp("bad.toml", "[[zone]]\nname = \"a\"\n");
    let out = rampart().args(["run", "-c"]).arg(&p).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`zone[0].hosts`"));
    let out = rampart()
        .args(["run", "-c", "/nonexistent/rampart.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rampart.toml"));
}

#[test]
fn rules_check_prints_ok_or_the_caret() {
    let out = rampart()
        .args([
            "rules",
            "check",
            r#"http.request.uri.path wildcard "/admin*""#,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let out = rampart()
        .args(["rules", "check", r#"http.host eq 5"#])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains('^') && err.contains("line 1"), "{err}");
}

#[test]
fn rules_test_exits_0_for_true_1_for_false_2_for_errors() {
    let req = temp(
        "req.http",
        "POST /login HTTP/1.1\nHost: example.test\nUser-Agent: curl/8\n\n",
    );
    let run = |expr: &str, ip: &str| {
        rampart()
            .args(["rules", "test", expr, "--client-ip", ip, "--request"])
            .arg(&req)
            .output()
            .unwrap()
    };
    let t = run(
        r#"http.request.uri.path eq "/login" and http.request.method eq "POST""#,
        "192.0.2.1",
    );
    assert_eq!(
        (
            t.status.code(),
            String::from_utf8_lossy(&t.stdout).trim().to_string()
        ),
        (Some(0), "true".into())
    );
    let f = run(r#"ip.src in {10.0.0.0/8}"#, "192.0.2.1");
    assert_eq!(
        (
            f.status.code(),
            String::from_utf8_lossy(&f.stdout).trim().to_string()
        ),
        (Some(1), "false".into())
    );
    let t = run(r#"ip.src in {10.0.0.0/8}"#, "10.1.2.3");
    assert_eq!(t.status.code(), Some(0));
    let e = run(r#"http.request.uri.paht eq "/""#, "192.0.2.1");
    assert_eq!(e.status.code(), Some(2));
    let bad = temp("bad.http", "GET /a b HTTP/1.1\nHost: x\n\n");
    let e = rampart()
        .args(["rules", "test", "http.host eq \"x\"", "--request"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("not a valid HTTP/1.1 request"));
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_and_exits_0_with_every_line_logged() {
    use std::io::{Read, Write};
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let log = temp("access.log", "");
    let p = temp(
        "run.toml",
        &format!(
            "[server]\nlisten = [\"{free}\"]\nadmin_listen = \"off\"\naccess_log = \"{}\"\nworkers = 2\n[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n",
            log.display()
        ),
    );
    let mut child = run_with(&p, std::process::Stdio::null());
    wait_until_listening(free);
    // A request answered just before the signal: its log line is still waiting for the
    // writer's next batch when shutdown begins, and must be written before the exit.
    let mut c = std::net::TcpStream::connect(free).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(
        b"GET /last HTTP/1.1\r\nHost: a.test\r\nUser-Agent: cli-test\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut response = Vec::new();
    c.read_to_end(&mut response).unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 521 "),
        "origin refused: 521"
    );
    assert_eq!(signal_and_wait(&mut child, "-TERM"), Some(0));
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains(r#""ClientRequestURI":"/last""#), "{lines}");
}

/// `rampart run -c PATH`, its stderr as given.
#[cfg(unix)]
fn run_with(path: &std::path::Path, stderr: std::process::Stdio) -> std::process::Child {
    rampart()
        .args(["run", "-c"])
        .arg(path)
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Waits (bounded) until something accepts connections on `addr`.
#[cfg(unix)]
fn wait_until_listening(addr: std::net::SocketAddr) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("rampart did not start listening on {addr}");
}

/// One request with `Connection: close`; the status code of the answer.
#[cfg(unix)]
fn status_for(addr: std::net::SocketAddr, host: &str) -> u16 {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(
        format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: cli-test\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = c.read_to_end(&mut response);
    String::from_utf8_lossy(&response[9..12]).parse().unwrap()
}

/// Waits (bounded, 20 s) for the child's exit code; kills it and fails with `stuck` if it
/// does not exit.
#[cfg(unix)]
fn wait_for_exit(child: &mut std::process::Child, stuck: &str) -> Option<i32> {
    for _ in 0..400 {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("{stuck}");
}

/// Sends `signal` to the child and waits (bounded) for its exit code.
#[cfg(unix)]
fn signal_and_wait(child: &mut std::process::Child, signal: &str) -> Option<i32> {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    wait_for_exit(child, &format!("rampart did not exit after {signal}"))
}

#[cfg(unix)]
fn config_for(addr: std::net::SocketAddr, server_extra: &str, hosts: &str) -> String {
    format!(
        "[server]\nlisten = [\"{addr}\"]\nadmin_listen = \"off\"\n{server_extra}\n[[zone]]\nname = \"a\"\nhosts = [{hosts}]\norigin = \"http://127.0.0.1:1\"\n"
    )
}

/// SIGHUP reloads the configuration file: new requests follow the new one; a broken file
/// changes nothing (and the process keeps running); settings bound at start-up wait for a
/// restart.
#[cfg(unix)]
#[test]
fn sighup_reloads_the_configuration_and_keeps_it_when_the_file_is_broken() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = temp("reload.toml", &config_for(free, "", "\"a.test\""));
    let mut child = run_with(&p, std::process::Stdio::null());
    wait_until_listening(free);
    // The origin refuses connections: 521 means the zone served the host, 409 that none did.
    assert_eq!(status_for(free, "b.test"), 409);
    std::fs::write(
        &p,
        common::without_bic(&config_for(free, "", "\"a.test\", \"b.test\"")),
    )
    .unwrap();
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    let mut reloaded = false;
    for _ in 0..100 {
        if status_for(free, "b.test") == 521 {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reloaded, "the new host is not served after SIGHUP");
    std::fs::write(&p, "[[zone]]\nname = 1\n").unwrap();
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "a broken reload ended the process"
    );
    assert_eq!(
        status_for(free, "b.test"),
        521,
        "the previous configuration stays"
    );
    assert_eq!(signal_and_wait(&mut child, "-TERM"), Some(0));
}

/// A port another process listens on is an error at start-up, even when that process set
/// SO_REUSEPORT (as a second rampart would): rampart's own listeners set it, and would
/// otherwise join the port and split its connections.
#[cfg(unix)]
#[test]
fn a_port_taken_by_another_process_fails_start_up() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let taken = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseport(true).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.listen(16).unwrap()
    });
    let addr = taken.local_addr().unwrap();
    let p = temp("taken.toml", &config_for(addr, "", "\"a.test\""));
    let mut child = run_with(&p, std::process::Stdio::piped());
    let code = wait_for_exit(
        &mut child,
        "rampart started on a port another process listens on",
    );
    assert_eq!(code, Some(1));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    drop(taken);
}

/// logrotate's way: the log is renamed, then SIGUSR1 (or SIGHUP) has rampart open a new file
/// of the old name; lines go to the renamed file until then, and to the new one after.
#[cfg(unix)]
#[test]
fn sigusr1_and_sighup_reopen_the_access_log() {
    let free = free_port();
    let log = temp("access.log", "");
    let p = temp(
        "reopen.toml",
        &config_for(
            free,
            &format!("access_log = \"{}\"", log.display()),
            "\"a.test\"",
        ),
    );
    let mut child = run_with(&p, std::process::Stdio::null());
    wait_until_listening(free);
    let lines_in = |path: &std::path::Path, n: usize| {
        for _ in 0..200 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= n {
                return text.lines().count();
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let mut rotated = Vec::new();
    for (i, signal) in ["-USR1", "-HUP"].into_iter().enumerate() {
        assert_eq!(status_for(free, "a.test"), 521);
        assert_eq!(lines_in(&log, 1), 1, "the line before the rotation");
        let moved = log.with_extension(format!("log.{i}"));
        std::fs::rename(&log, &moved).unwrap();
        assert_eq!(status_for(free, "a.test"), 521);
        assert_eq!(lines_in(&moved, 2), 2, "still writing to the renamed file");
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        let mut reopened = false;
        for _ in 0..100 {
            if log.exists() {
                reopened = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(reopened, "{signal} did not reopen the log");
        rotated.push(moved);
    }
    assert_eq!(status_for(free, "a.test"), 521);
    assert_eq!(lines_in(&log, 1), 1, "the new file gets the new lines");
    assert!(child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(signal_and_wait(&mut child, "-TERM"), Some(0));
}

/// `rampart run --listen --admin-listen` move the embedded default's ports; a taken admin
/// port says how to move it; a log written to a file has no colour escapes.
#[cfg(unix)]
#[test]
fn run_flags_move_the_ports_and_a_taken_admin_port_says_how() {
    let (listen, admin) = (free_port(), free_port());
    let stderr_file = temp("stderr.log", "");
    let mut child = rampart()
        .args([
            "run",
            "--listen",
            &listen.to_string(),
            "--admin-listen",
            &admin.to_string(),
        ])
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    wait_until_listening(listen);
    wait_until_listening(admin);
    assert_eq!(
        status_for(listen, "localhost"),
        200,
        "the demo origin answers"
    );
    assert_eq!(signal_and_wait(&mut child, "-TERM"), Some(0));
    let log = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(
        log.contains(&format!("listening on http://{listen}")),
        "{log}"
    );
    assert!(!log.contains('\x1b'), "colour escapes in a file: {log:?}");

    // The admin port taken (Prometheus's 9090, say): the error says how to move it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = rampart()
        .args(["run", "--listen", &free_port().to_string()])
        .args(["--admin-listen", &taken.local_addr().unwrap().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--admin-listen") && err.contains("server.admin_listen"),
        "{err}"
    );
    let out = rampart()
        .args(["run", "--admin-listen", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nor `off`"));
}

/// The README's HTTPS recipe: `rampart run --tls-dev` serves the embedded default over TLS
/// with a certificate written to certs/, which a client can trust.
#[cfg(unix)]
#[test]
fn tls_dev_serves_the_embedded_default_over_https() {
    let dir = common::TempDir::new("cli");
    let (listen, tls) = (free_port(), free_port());
    let mut child = rampart()
        .current_dir(&dir)
        .args([
            "run",
            "--tls-dev",
            "--listen",
            &listen.to_string(),
            "--admin-listen",
            "off",
        ])
        .args(["--tls-listen", &tls.to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until_listening(tls);
    let cert = dir.join("certs/localhost.pem");
    assert!(
        cert.exists(),
        "the certificate is written where the README says"
    );
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&cert)
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", tls.port())])
        .arg(format!("https://localhost:{}/", tls.port()))
        .output()
        .expect("curl (scripts/test installs it)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    assert_eq!(signal_and_wait(&mut child, "-TERM"), Some(0));
}
