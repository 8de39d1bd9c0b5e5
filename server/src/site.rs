//! Where the site (the WASM, JS and CSS under `/pkg/`) comes from: the
//! copy embedded in the binary, or a directory on disk.
//!
//! A release build by `cargo leptos build --release --precompress` carries
//! its site (see `build.rs`), so the binary alone is a deployment.
//! `--site-root DIR` still serves DIR from disk, as do builds without an
//! embedded site (debug and test builds), from the directory they find.
//!
//! Embedded files are answered like tower-http's `ServeDir` with
//! precompression, which serves the disk site: the `.br` or `.gz` copy the
//! client prefers by its `Accept-Encoding` q-values (brotli on a tie), else
//! the file itself, with its type from the extension. Each copy has its
//! own strong `ETag`; the names do not change between builds, so clients
//! revalidate (`Cache-Control: no-cache`) and get a 304 while unchanged.

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{
        header::{self, HeaderMap, HeaderValue},
        Method, StatusCode,
    },
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    path::PathBuf,
    sync::LazyLock,
};

/// The site root Leptos is given while files come from the binary: not a
/// directory, so a request for any other file still gets the 404 page.
const EMBEDDED_ROOT: &str = "(site embedded in the binary)";

/// The built site as this binary's build found it (`build.rs` checked it
/// is complete), or nothing.
#[cfg(embedded_site)]
static FILES: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../target/site");
#[cfg(not(embedded_site))]
static FILES: include_dir::Dir<'static> = include_dir::Dir::new("", &[]);

/// Every file under `dir`: path (no leading `/`) and contents.
fn files_in(dir: &'static include_dir::Dir<'static>) -> Vec<(&'static str, &'static [u8])> {
    dir.entries()
        .iter()
        .flat_map(|entry| match entry {
            include_dir::DirEntry::Dir(dir) => files_in(dir),
            include_dir::DirEntry::File(file) => {
                vec![(file.path().to_str().unwrap_or_default(), file.contents())]
            }
        })
        .collect()
}

/// The embedded site by request path (`/pkg/agentdeck.wasm`); empty when
/// the binary carries none.
static ASSETS: LazyLock<HashMap<String, Asset>> = LazyLock::new(|| assets(files_in(&FILES)));

/// Where the site's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// The copy in the binary.
    Embedded,
    /// A site root on disk (it holds `pkg/`).
    Dir(PathBuf),
}

impl Site {
    /// `--site-root` when given; else the binary's own copy when it has
    /// one; else `default`, the directory it would be found in on disk.
    pub fn choose(flag: Option<PathBuf>, default: impl FnOnce() -> PathBuf) -> Self {
        match flag {
            Some(dir) => Site::Dir(dir),
            None if !ASSETS.is_empty() => Site::Embedded,
            None => Site::Dir(default()),
        }
    }

    /// Says where the files come from (and when a directory has none).
    pub fn log(&self) {
        match self {
            Site::Embedded => {
                let bytes: usize = ASSETS.values().map(|a| a.variants[0].bytes.len()).sum();
                tracing::info!(
                    files = ASSETS.len(),
                    kib = bytes / 1024,
                    "serving the site embedded in the binary"
                );
            }
            Site::Dir(dir) if dir.join("pkg").is_dir() => {
                tracing::info!("serving the site from {}", dir.display());
            }
            Site::Dir(dir) => tracing::warn!(
                "serving the site from {}, which has no pkg/: pages will load without styles \
                 or interactivity; build with `cargo leptos build --release --precompress`",
                dir.display()
            ),
        }
    }

    /// The `site_root` for [`leptos::config::LeptosOptions`], which also
    /// tells [`Site::of`] which one this is.
    pub fn leptos_root(&self) -> String {
        match self {
            Site::Embedded => EMBEDDED_ROOT.to_owned(),
            Site::Dir(dir) => dir.to_string_lossy().into_owned(),
        }
    }

    /// The site a [`Site::leptos_root`] names.
    pub fn of(leptos_root: &str) -> Self {
        if leptos_root == EMBEDDED_ROOT && !ASSETS.is_empty() {
            Site::Embedded
        } else {
            Site::Dir(PathBuf::from(leptos_root))
        }
    }
}

/// Answers a GET or HEAD for an embedded file; passes anything else on.
pub async fn serve_embedded(request: Request, next: Next) -> Response {
    let asset = matches!(*request.method(), Method::GET | Method::HEAD)
        .then(|| ASSETS.get(request.uri().path()))
        .flatten();
    match asset {
        Some(asset) => asset.answer(request.headers()),
        None => next.run(request).await,
    }
}

/// One file of the site and its precompressed copies.
struct Asset {
    content_type: HeaderValue,
    /// The file itself first, then its `.br` and `.gz` copies that exist.
    variants: Vec<Variant>,
}

struct Variant {
    encoding: Encoding,
    bytes: Bytes,
    etag: HeaderValue,
}

/// A content coding, least preferred first (as tower-http orders them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// The file-name suffix of a copy in this coding.
    fn suffix(self) -> &'static str {
        match self {
            Encoding::Identity => "",
            Encoding::Gzip => ".gz",
            Encoding::Brotli => ".br",
        }
    }

    fn header(self) -> Option<HeaderValue> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some(HeaderValue::from_static("gzip")),
            Encoding::Brotli => Some(HeaderValue::from_static("br")),
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            ("br", Encoding::Brotli),
            ("gzip", Encoding::Gzip),
            ("x-gzip", Encoding::Gzip),
            ("identity", Encoding::Identity),
        ]
        .into_iter()
        .find_map(|(n, e)| name.eq_ignore_ascii_case(n).then_some(e))
    }
}

/// Groups the files into assets: `x.br` and `x.gz` are copies of `x`.
fn assets(files: Vec<(&str, &'static [u8])>) -> HashMap<String, Asset> {
    let mut by_path: HashMap<String, &'static [u8]> = files
        .into_iter()
        .map(|(path, data)| (format!("/{path}"), data))
        .collect();
    let originals: Vec<String> = by_path
        .keys()
        .filter(|p| !p.ends_with(".br") && !p.ends_with(".gz"))
        .cloned()
        .collect();
    originals
        .into_iter()
        .map(|path| {
            let variants = [Encoding::Identity, Encoding::Brotli, Encoding::Gzip]
                .into_iter()
                .filter_map(|encoding| {
                    let data = by_path.remove(&format!("{path}{}", encoding.suffix()))?;
                    Some(Variant {
                        encoding,
                        bytes: Bytes::from_static(data),
                        etag: etag(data),
                    })
                })
                .collect();
            let content_type = mime_guess::from_path(&path)
                .first_raw()
                .unwrap_or("application/octet-stream");
            let asset = Asset {
                content_type: HeaderValue::from_static(content_type),
                variants,
            };
            (path, asset)
        })
        .collect()
}

/// A strong entity tag for these contents: a 64-bit hash, fixed for the
/// binary (`DefaultHasher::new` has constant keys), so a restart keeps
/// clients' copies valid.
fn etag(data: &[u8]) -> HeaderValue {
    let mut hasher = DefaultHasher::new();
    data.hash(&mut hasher);
    HeaderValue::try_from(format!("\"{:016x}\"", hasher.finish()))
        .expect("hex is a valid header value")
}

impl Asset {
    fn answer(&self, request: &HeaderMap) -> Response {
        let available: Vec<Encoding> = self.variants.iter().map(|v| v.encoding).collect();
        let chosen = preferred_encoding(request, &available);
        let variant = self
            .variants
            .iter()
            .find(|v| v.encoding == chosen)
            .unwrap_or(&self.variants[0]);
        let mut response = if not_modified(request, &variant.etag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Response::new(Body::from(variant.bytes.clone()));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, self.content_type.clone());
            if let Some(encoding) = variant.encoding.header() {
                headers.insert(header::CONTENT_ENCODING, encoding);
            }
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, variant.etag.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if self.variants.len() > 1 {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        response
    }
}

/// The coding to answer in, among those `available`, by the request's
/// `Accept-Encoding` as tower-http reads it: the highest q-value above 0
/// wins, brotli before gzip before identity on a tie; unknown codings and
/// `*` are ignored; without an acceptable one, identity.
fn preferred_encoding(request: &HeaderMap, available: &[Encoding]) -> Encoding {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| {
            let mut parts = item.splitn(2, ';');
            let encoding = Encoding::parse(parts.next()?.trim())?;
            let q = match parts.next() {
                Some(q) => q_value(q.trim())?,
                None => 1000,
            };
            Some((encoding, q))
        })
        .filter(|&(encoding, q)| q > 0 && available.contains(&encoding))
        .max_by_key(|&(encoding, q)| (q, encoding))
        .map_or(Encoding::Identity, |(encoding, _)| encoding)
}

/// A q-value (`q=0.8`) in thousandths; `None` when malformed.
fn q_value(text: &str) -> Option<u16> {
    let value = text
        .strip_prefix("q=")
        .or_else(|| text.strip_prefix("Q="))?;
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let fraction = fraction
        .bytes()
        .zip([100, 10, 1])
        .map(|(digit, scale)| u16::from(digit - b'0') * scale)
        .sum::<u16>();
    Some(whole + fraction).filter(|&q| q <= 1000)
}

/// Whether the request's `If-None-Match` names this tag (or `*`); weak
/// comparison, as for a GET.
fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Brotli, Gzip, Identity};

    fn accepting(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn the_preferred_available_coding_wins() {
        let all = [Identity, Brotli, Gzip];
        for (accept, expected) in [
            (&[][..], Identity),
            (&["br"], Brotli),
            (&["gzip"], Gzip),
            (&["x-gzip"], Gzip),
            (&["gzip, deflate, br"], Brotli),
            (&["gzip, deflate, br, zstd"], Brotli),
            (&["br;q=0.5, gzip"], Gzip),
            (&["br;q=0.5, gzip;q=0.500"], Brotli),
            (&["br;q=0, gzip;q=0"], Identity),
            (&["BR;Q=1"], Brotli),
            (&["gzip", "br"], Brotli),
            (&["identity"], Identity),
            (&["*"], Identity),
            (&["deflate, zstd"], Identity),
            // Malformed q-values drop their coding, as in tower-http.
            (&["br;q=2, gzip"], Gzip),
            (&["br;q=0.1234, gzip;q=0.1"], Gzip),
            (&["br;level=5"], Identity),
        ] {
            assert_eq!(
                preferred_encoding(&accepting(accept), &all),
                expected,
                "{accept:?}"
            );
        }
        assert_eq!(
            preferred_encoding(&accepting(&["br"]), &[Identity, Gzip]),
            Identity
        );
        assert_eq!(
            preferred_encoding(&accepting(&["br, gzip"]), &[Identity, Gzip]),
            Gzip
        );
    }

    #[test]
    fn q_values_are_read_in_thousandths() {
        for (text, q) in [
            ("q=1", Some(1000)),
            ("q=1.000", Some(1000)),
            ("q=0.5", Some(500)),
            ("q=0.05", Some(50)),
            ("q=0.001", Some(1)),
            ("q=0", Some(0)),
            ("q=0.", Some(0)),
            ("q=1.001", None),
            ("q=.5", None),
            ("q=0.5x", None),
            ("level=1", None),
        ] {
            assert_eq!(q_value(text), q, "{text}");
        }
    }

    /// A site of one file with both copies, as cargo-leptos writes it.
    fn site() -> HashMap<String, Asset> {
        assets(vec![
            ("pkg/app.wasm", &b"\0asm wasm"[..]),
            ("pkg/app.wasm.br", b"brotli"),
            ("pkg/app.wasm.gz", b"gzip"),
            ("pkg/app.css", b"body {}"),
        ])
    }

    fn get(asset: &Asset, headers: &[(header::HeaderName, &str)]) -> Response {
        let mut request = HeaderMap::new();
        for (name, value) in headers {
            request.append(name, HeaderValue::from_str(value).unwrap());
        }
        asset.answer(&request)
    }

    #[test]
    fn a_file_is_answered_in_the_coding_asked_for_with_its_own_tag() {
        let site = site();
        assert_eq!(site.len(), 2, "the copies are not files of their own");
        let wasm = &site["/pkg/app.wasm"];
        for (accept, encoding, tag) in [
            ("br, gzip", Some("br"), etag(b"brotli")),
            ("gzip", Some("gzip"), etag(b"gzip")),
            ("deflate", None, etag(b"\0asm wasm")),
        ] {
            let response = get(wasm, &[(header::ACCEPT_ENCODING, accept)]);
            assert_eq!(response.status(), StatusCode::OK);
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], "application/wasm");
            assert_eq!(
                headers
                    .get(header::CONTENT_ENCODING)
                    .map(|v| v.to_str().unwrap()),
                encoding
            );
            assert_eq!(headers[header::ETAG], tag);
            assert_eq!(headers[header::VARY], "accept-encoding");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        }
        // One copy only: nothing varies.
        let css = get(&site["/pkg/app.css"], &[(header::ACCEPT_ENCODING, "br")]);
        assert_eq!(css.headers()[header::CONTENT_TYPE], "text/css");
        assert!(css.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(css.headers().get(header::VARY).is_none());
    }

    #[test]
    fn a_matching_tag_gets_not_modified() {
        let site = site();
        let wasm = &site["/pkg/app.wasm"];
        let br = etag(b"brotli");
        let br = br.to_str().unwrap();
        assert!(
            br.starts_with('"') && br.ends_with('"') && br.len() == 18,
            "{br}"
        );
        for if_none_match in [br, &format!("W/{br}"), &format!("\"x\", {br}"), "*"] {
            let response = get(
                wasm,
                &[
                    (header::ACCEPT_ENCODING, "br"),
                    (header::IF_NONE_MATCH, if_none_match),
                ],
            );
            assert_eq!(
                response.status(),
                StatusCode::NOT_MODIFIED,
                "{if_none_match}"
            );
            assert_eq!(response.headers()[header::ETAG], br);
            assert_eq!(response.headers()[header::VARY], "accept-encoding");
        }
        // The brotli copy's tag does not match the gzip copy.
        let response = get(
            wasm,
            &[
                (header::ACCEPT_ENCODING, "gzip"),
                (header::IF_NONE_MATCH, br),
            ],
        );
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn the_flag_wins_then_the_embedded_site_then_the_default_directory() {
        let dir = PathBuf::from("/srv/site");
        assert_eq!(
            Site::choose(Some(dir.clone()), || unreachable!()),
            Site::Dir(dir.clone())
        );
        assert_eq!(
            Site::of(&Site::Dir(dir.clone()).leptos_root()),
            Site::Dir(dir)
        );
        if ASSETS.is_empty() {
            let default = PathBuf::from("target/site");
            assert_eq!(Site::choose(None, || default.clone()), Site::Dir(default));
        } else {
            assert_eq!(Site::choose(None, || unreachable!()), Site::Embedded);
            assert_eq!(Site::of(&Site::Embedded.leptos_root()), Site::Embedded);
        }
    }
}
