//! Which requests are cached by default, and the key a cached response is found by.

/// File extensions Cloudflare caches by default (its "default cached file extensions"):
/// static assets, media, fonts, archives and documents. HTML and paths without an extension
/// are not cached unless a cache rule says so.
pub const DEFAULT_EXTENSIONS: &[&str] = &[
    "7z", "apk", "avi", "avif", "bin", "bmp", "bz2", "class", "css", "csv", "dmg", "doc", "docx",
    "ejs", "eot", "eps", "exe", "flac", "gif", "gz", "ico", "iso", "jar", "jpeg", "jpg", "js",
    "mid", "midi", "mkv", "mp3", "mp4", "ogg", "otf", "pdf", "pict", "pls", "png", "ppt", "pptx",
    "ps", "rar", "svg", "svgz", "swf", "tar", "tif", "tiff", "ttf", "webm", "webp", "woff",
    "woff2", "xls", "xlsx", "zip", "zst",
];

/// Whether `path`'s last segment has an extension cached by default (case-insensitive).
pub fn default_cacheable_path(path: &str) -> bool {
    // Byte scans from the end: this runs for every GET, most of which have no extension.
    let path = path.as_bytes();
    let last = &path[path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..];
    let Some(dot) = last.iter().rposition(|&b| b == b'.') else {
        return false;
    };
    let ext = &last[dot + 1..];
    ext.len() <= 5
        && DEFAULT_EXTENSIONS
            .iter()
            .any(|e| e.as_bytes().eq_ignore_ascii_case(ext))
}

/// What of the query string goes into the key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum QueryKey {
    /// The whole query, as sent (the default).
    #[default]
    All,
    /// None of it.
    Ignore,
    /// Only these arguments, in name order whatever their order in the request.
    Only(Vec<String>),
}

/// What a key is made of, beyond the URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySpec {
    /// The query.
    pub query: QueryKey,
    /// Request header values that go into the key (lowercase names).
    pub headers: Vec<String>,
    /// Cookie values that go into the key.
    pub cookies: Vec<String>,
    /// Leave the host out (a key shared by every host of the zone).
    pub ignore_host: bool,
}

/// The parts of a request a key is built from.
#[derive(Clone, Copy, Debug)]
pub struct KeyRequest<'a> {
    /// The zone's name.
    pub zone: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host, lowercase.
    pub host: &'a str,
    /// The path (normalised as the rules see it).
    pub path: &'a str,
    /// The query, without `?`.
    pub query: Option<&'a str>,
}

/// The cache key: zone, scheme, host, path and the query as `spec` says, then the chosen
/// header and cookie values, each on a line of its own (no part can spell another's line: a
/// line feed cannot be in a validated request's target, header values or cookies).
pub fn build<'h>(
    r: &KeyRequest<'_>,
    spec: &KeySpec,
    header: impl Fn(&str) -> Option<&'h [u8]>,
    cookie: impl Fn(&str) -> Option<&'h [u8]>,
) -> String {
    let mut key = String::with_capacity(
        r.zone.len() + r.host.len() + r.path.len() + r.query.map_or(0, str::len) + 16,
    );
    key.push_str(r.zone);
    key.push('\n');
    key.push_str(r.scheme);
    key.push_str("://");
    if !spec.ignore_host {
        key.push_str(r.host);
    }
    key.push_str(r.path);
    match (&spec.query, r.query) {
        (QueryKey::All, Some(q)) => {
            key.push('?');
            key.push_str(q);
        }
        (QueryKey::Only(names), Some(q)) => {
            let mut kept: Vec<&str> = q
                .split('&')
                .filter(|pair| {
                    let name = pair.split_once('=').map_or(*pair, |(n, _)| n);
                    names.iter().any(|k| k == name)
                })
                .collect();
            kept.sort_unstable();
            if !kept.is_empty() {
                key.push('?');
                key.push_str(&kept.join("&"));
            }
        }
        _ => {}
    }
    for name in &spec.headers {
        key.push_str("\nh:");
        key.push_str(name);
        key.push('=');
        key.push_str(&String::from_utf8_lossy(header(name).unwrap_or(b"")));
    }
    for name in &spec.cookies {
        key.push_str("\nc:");
        key.push_str(name);
        key.push('=');
        key.push_str(&String::from_utf8_lossy(cookie(name).unwrap_or(b"")));
    }
    key
}

/// The class of content codings a request accepts, for a response that varies on
/// Accept-Encoding: variants are stored per class, not per spelling of the field (browsers
/// send dozens of spellings of "gzip, deflate, br, zstd").
pub fn encoding_class(accept_encoding: Option<&[u8]>) -> &'static str {
    let Some(v) = accept_encoding else {
        return "identity";
    };
    let accepts = |coding: &[u8]| {
        v.split(|&b| b == b',').any(|item| {
            let mut parts = item.split(|&b| b == b';');
            let name = parts.next().unwrap_or(b"").trim_ascii();
            let refused = parts.any(|p| {
                let p = p.trim_ascii();
                p.len() >= 2
                    && p[..2].eq_ignore_ascii_case(b"q=")
                    && p[2..].iter().all(|&b| b == b'0' || b == b'.')
            });
            name.eq_ignore_ascii_case(coding) && !refused
        })
    };
    if accepts(b"zstd") {
        "zstd"
    } else if accepts(b"br") {
        "br"
    } else if accepts(b"gzip") {
        "gzip"
    } else {
        "identity"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: KeyRequest<'static> = KeyRequest {
        zone: "z",
        scheme: "https",
        host: "a.test",
        path: "/img/x.png",
        query: Some("b=2&a=1&utm=x"),
    };

    fn none(_: &str) -> Option<&'static [u8]> {
        None
    }

    #[test]
    fn static_extensions_are_cached_by_default_and_html_is_not() {
        for p in ["/a.css", "/x/y.JS", "/f.woff2", "/v.mp4", "/a.b/c.pdf"] {
            assert!(default_cacheable_path(p), "{p}");
        }
        for p in [
            "/",
            "/index.html",
            "/api/users",
            "/a.css/",
            "/x.php",
            "/a.b/c",
        ] {
            assert!(!default_cacheable_path(p), "{p}");
        }
    }

    #[test]
    fn the_key_holds_what_the_spec_says() {
        let all = build(&REQ, &KeySpec::default(), none, none);
        assert_eq!(all, "z\nhttps://a.test/img/x.png?b=2&a=1&utm=x");
        let spec = KeySpec {
            query: QueryKey::Only(vec!["a".into(), "b".into()]),
            ..Default::default()
        };
        assert_eq!(
            build(&REQ, &spec, none, none),
            "z\nhttps://a.test/img/x.png?a=1&b=2"
        );
        let spec = KeySpec {
            query: QueryKey::Ignore,
            headers: vec!["x-device".into()],
            cookies: vec!["lang".into()],
            ignore_host: true,
        };
        let key = build(&REQ, &spec, |_| Some(&b"mobile"[..]), |_| Some(&b"fr"[..]));
        assert_eq!(key, "z\nhttps:///img/x.png\nh:x-device=mobile\nc:lang=fr");
    }

    #[test]
    fn accept_encoding_is_reduced_to_the_best_class() {
        assert_eq!(encoding_class(None), "identity");
        assert_eq!(encoding_class(Some(b"gzip, deflate, br, zstd")), "zstd");
        assert_eq!(encoding_class(Some(b"gzip, deflate, br")), "br");
        assert_eq!(encoding_class(Some(b"GZIP;q=0.8, deflate")), "gzip");
        assert_eq!(encoding_class(Some(b"br;q=0, gzip")), "gzip");
        assert_eq!(encoding_class(Some(b"identity")), "identity");
    }
}
