//! One file to deploy: the release binary carries its site. Copied alone
//! into an empty directory and started there without a site root, it
//! serves the WASM, JS and CSS itself, precompressed as the client asks.
//!
//! These tests run the binary `AGENTDECK_TEST_BIN` names, else
//! `target/release/agentdeck` when it exists (what
//! `cargo leptos build --release --precompress` makes, as for Playwright).
//! A binary without an embedded site (none built yet, a debug build, a
//! release build made without `--precompress`) is skipped with a message
//! on stderr, except under CI when `AGENTDECK_TEST_BIN` names it:
//! scripts/test.sh runs this file again on the release build it makes.

mod support;

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};
use support::Server;
use tempfile::TempDir;

/// What the server logs when its files come from the binary.
const EMBEDDED: &str = "serving the site embedded in the binary";

/// The binary to test, if there is one that may carry a site.
fn release_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("AGENTDECK_TEST_BIN") {
        return Some(bin.into());
    }
    // This build's binary is target/<profile>/agentdeck.
    let this = PathBuf::from(env!("CARGO_BIN_EXE_agentdeck"));
    let release = this.parent()?.parent()?.join("release/agentdeck");
    release.is_file().then_some(release)
}

/// Says on the test's stderr (shown even when the test passes) why it did
/// not run; under CI, a binary named to be tested must carry its site.
fn skip(test: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none() || std::env::var_os("AGENTDECK_TEST_BIN").is_none(),
        "{test}: {why}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped, {why}; `cargo leptos build --release --precompress` makes one that does"
    );
}

/// A copy of the binary alone in a fresh directory, running from there.
struct Alone {
    child: Child,
    addr: String,
    dir: TempDir,
}

impl Alone {
    /// Copies `binary` into an empty directory and starts `serve` there
    /// (working directory included) with `args` and no site root setting.
    fn start(binary: &Path, args: &[&OsStr]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let copy = bin.join("agentdeck");
        std::fs::copy(binary, &copy).unwrap();
        let data = dir.path().join("data");
        let mut command = Command::new(&copy);
        command
            .current_dir(&bin)
            .args(["serve", "--port", "0", "--database-url"])
            .arg(data.join("agentdeck.db"))
            .arg("--claude-projects")
            .arg(data.join("claude"))
            .arg("--codex-sessions")
            .arg(data.join("codex"))
            .args(args)
            .env("CLAUDE_CONFIG_DIR", data.join("claude-config"))
            .env("CODEX_HOME", data.join("codex-home"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AGENTDECK_") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(addr) = line.trim().strip_prefix("agentdeck listening on http://") else {
            let _ = child.kill();
            panic!(
                "the copy did not start: {line:?}\n{}",
                std::fs::read_to_string(dir.path().join("stderr")).unwrap()
            );
        };
        Alone {
            addr: addr.to_owned(),
            child,
            dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap()
    }

    /// A GET with the given header lines; the head, and the body as sent.
    fn get(&self, path: &str, headers: &[&str]) -> Reply {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for header in headers {
            request.push_str(&format!("{header}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no end of the head");
        let head = String::from_utf8(response[..end].to_vec()).unwrap();
        Reply {
            status: support::status_of(&head),
            head,
            body: response[end + 4..].to_vec(),
        }
    }
}

impl Drop for Alone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        support::header_in(&self.head, name)
    }
}

fn unbrotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli_decompressor::Decompressor::new(body, 4096)
        .read_to_end(&mut out)
        .expect("not brotli");
    out
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("not gzip");
    out
}

#[test]
fn a_copied_release_binary_serves_its_own_site() {
    const TEST: &str = "a_copied_release_binary_serves_its_own_site";
    let Some(binary) = release_binary() else {
        return skip(TEST, "there is no target/release/agentdeck");
    };
    let server = Alone::start(&binary, &[]);
    if !server.stderr().contains(EMBEDDED) {
        return skip(
            TEST,
            &format!("{} carries no site of its own", binary.display()),
        );
    }

    // The page links the stylesheet and the hydration scripts...
    let page = server.get("/", &[]);
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("/pkg/agentdeck.css"), "{html}");
    assert!(html.contains("/pkg/agentdeck.js"), "{html}");

    // ...and each comes in the coding asked for, with its own type.
    for (file, content_type) in [
        ("/pkg/agentdeck.wasm", "application/wasm"),
        ("/pkg/agentdeck.js", "text/javascript"),
        ("/pkg/agentdeck.css", "text/css"),
    ] {
        let plain = server.get(file, &[]);
        assert_eq!(plain.status, 200, "{file}: {}", plain.head);
        assert_eq!(plain.header("content-type"), Some(content_type), "{file}");
        assert_eq!(plain.header("content-encoding"), None, "{file}");
        assert_eq!(
            plain.header("content-length"),
            Some(plain.body.len().to_string().as_str()),
            "{file}"
        );
        assert!(!plain.body.is_empty());

        let br = server.get(file, &["Accept-Encoding: gzip, deflate, br, zstd"]);
        assert_eq!(br.status, 200, "{file}: {}", br.head);
        assert_eq!(br.header("content-encoding"), Some("br"), "{file}");
        assert_eq!(br.header("content-type"), Some(content_type), "{file}");
        assert_eq!(br.header("vary"), Some("accept-encoding"), "{file}");
        assert!(br.body.len() < plain.body.len(), "{file} is not smaller");
        assert_eq!(unbrotli(&br.body), plain.body, "{file}");

        let gzip = server.get(file, &["Accept-Encoding: gzip"]);
        assert_eq!(gzip.header("content-encoding"), Some("gzip"), "{file}");
        assert_eq!(gunzip(&gzip.body), plain.body, "{file}");

        // Clients revalidate, and an unchanged file costs a 304.
        assert_eq!(br.header("cache-control"), Some("no-cache"), "{file}");
        let etag = br.header("etag").expect("no ETag");
        assert_ne!(
            Some(etag),
            plain.header("etag"),
            "{file}: one tag per coding"
        );
        let again = server.get(
            file,
            &["Accept-Encoding: br", &format!("If-None-Match: {etag}")],
        );
        assert_eq!(again.status, 304, "{file}: {}", again.head);
        assert!(again.body.is_empty());

        // The headers every answer gets still apply.
        assert_eq!(br.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(br.header("x-frame-options"), Some("DENY"));
        assert!(br.header("content-security-policy").is_some());
    }
    assert!(
        server
            .get("/pkg/agentdeck.wasm", &[])
            .body
            .starts_with(b"\0asm"),
        "not WebAssembly"
    );

    // A file the site does not have is the 404 page, as from disk.
    let missing = server.get("/pkg/missing.js", &[]);
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-encoding").is_none());
}

#[test]
fn a_site_root_given_is_served_from_disk_instead() {
    const TEST: &str = "a_site_root_given_is_served_from_disk_instead";
    let Some(binary) = release_binary() else {
        return skip(TEST, "there is no target/release/agentdeck");
    };
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/agentdeck.css"), "body { color: red }").unwrap();
    let server = Alone::start(
        &binary,
        &[OsStr::new("--site-root"), site.path().as_os_str()],
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains(&format!("serving the site from {}", site.path().display())),
        "{stderr}"
    );

    let css = server.get("/pkg/agentdeck.css", &["Accept-Encoding: br"]);
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css"));
    // Small: the compression layer leaves it as it is on disk.
    assert_eq!(css.body, b"body { color: red }");
    assert_eq!(server.get("/pkg/agentdeck.wasm", &[]).status, 404);
}

#[test]
fn the_server_says_where_its_site_comes_from() {
    // The test servers get a site root (AGENTDECK_SITE_ROOT, with pkg/).
    let server = Server::start();
    let expected = format!("serving the site from {}", server.path().display());
    let stderr = server.stderr();
    assert!(stderr.contains(&expected), "{stderr}");
}
