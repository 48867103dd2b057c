//! Purging the cache, as Cloudflare's API has it (`POST /client/v4/zones/{zone}/purge_cache`):
//! everything, files (URLs), prefixes, hosts or tags of a zone.

use rampart_cache::object::Meta;

use super::EdgeCache;

/// What a purge removes, of one zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purge {
    /// `{"purge_everything": true}`.
    Everything,
    /// `{"files": ["https://host/path?query", ...]}` (or `{"url": "..."}` objects).
    Files(Vec<String>),
    /// `{"prefixes": ["host/path", ...]}`.
    Prefixes(Vec<String>),
    /// `{"hosts": ["host", ...]}`.
    Hosts(Vec<String>),
    /// `{"tags": ["tag", ...]}`, from the origin's `Cache-Tag` field (case-insensitive).
    Tags(Vec<String>),
}

/// Most items one purge request may name (Cloudflare's limit for files, tags, hosts and
/// prefixes per request).
pub const MAX_ITEMS: usize = 100;

impl Purge {
    /// Reads a purge request body; the error says what is wrong, as the API reports it.
    pub fn from_json(body: &[u8]) -> Result<Purge, String> {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let obj = v.as_object().ok_or("the body must be a JSON object")?;
        if obj.len() != 1 {
            return Err(
                "name exactly one of purge_everything, files, prefixes, hosts, tags".into(),
            );
        }
        let (kind, value) = obj.iter().next().ok_or("empty body")?;
        if kind == "purge_everything" {
            return match value.as_bool() {
                Some(true) => Ok(Purge::Everything),
                _ => Err("purge_everything must be true".into()),
            };
        }
        let items = value
            .as_array()
            .ok_or_else(|| format!("{kind} must be an array"))?;
        if items.is_empty() || items.len() > MAX_ITEMS {
            return Err(format!("{kind} must list 1 to {MAX_ITEMS} items"));
        }
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            // Cloudflare's `{"url", "headers"}` form: the headers (strings) pick a variant, and
            // every variant is purged here, so they are checked but not used.
            let headers_ok = item.get("headers").is_none_or(|h| {
                h.as_object()
                    .is_some_and(|h| h.values().all(serde_json::Value::is_string))
            });
            if !headers_ok {
                return Err(format!("the headers of an item of {kind} must be strings"));
            }
            let s = match (item.as_str(), item.get("url").and_then(|u| u.as_str())) {
                (Some(s), _) | (None, Some(s)) if kind == "files" => s,
                (Some(s), _) => s,
                _ => return Err(format!("every item of {kind} must be a string")),
            };
            list.push(s.to_string());
        }
        match kind.as_str() {
            "files" => Ok(Purge::Files(
                list.iter().map(|u| normalise_url(u)).collect(),
            )),
            "prefixes" => Ok(Purge::Prefixes(
                list.iter().map(|p| normalise_prefix(p)).collect(),
            )),
            "hosts" => Ok(Purge::Hosts(
                list.iter().map(|h| h.to_ascii_lowercase()).collect(),
            )),
            "tags" => Ok(Purge::Tags(
                list.iter().map(|t| t.to_ascii_lowercase()).collect(),
            )),
            other => Err(format!(
                "unknown purge `{other}`; one of: purge_everything, files, prefixes, hosts, tags"
            )),
        }
    }

    /// Whether the object whose metadata is `meta` (of `zone`) is purged.
    pub fn matches(&self, zone: &str, meta: &Meta) -> bool {
        if &*meta.zone != zone {
            return false;
        }
        let url = &*meta.url;
        match self {
            Purge::Everything => true,
            Purge::Files(urls) => urls.iter().any(|u| u == url),
            Purge::Prefixes(prefixes) => {
                let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
                prefixes
                    .iter()
                    .any(|p| without_scheme.starts_with(p.as_str()))
            }
            Purge::Hosts(hosts) => hosts.iter().any(|h| **h == *meta.host),
            Purge::Tags(tags) => meta.tags.iter().any(|t| tags.iter().any(|p| **p == **t)),
        }
    }
}

/// [`apply`] on a blocking thread (deleting the disk tier's files blocks); 0 without a
/// cache.
pub async fn apply_off_thread(
    cache: Option<std::sync::Arc<EdgeCache>>,
    zone: String,
    purge: Purge,
) -> usize {
    let Some(cache) = cache else {
        return 0;
    };
    tokio::task::spawn_blocking(move || apply(&cache, &zone, &purge))
        .await
        .unwrap_or(0)
}

/// Removes what `purge` names of `zone` from memory and disk; how many objects were removed
/// (an object in both counts once per tier). It takes effect for the next request. Deleting
/// files blocks: run it off the workers.
pub fn apply(cache: &EdgeCache, zone: &str, purge: &Purge) -> usize {
    let memory = cache.store.purge(|o| purge.matches(zone, &o.meta));
    let disk = cache
        .disk
        .as_ref()
        .map_or(0, |d| d.purge(|m| purge.matches(zone, m)));
    memory.max(disk)
}

/// A URL with its scheme and host in lowercase (as stored).
fn normalise_url(u: &str) -> String {
    match u.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
            let path = if path.is_empty() { "/" } else { path };
            format!(
                "{}://{}{path}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase()
            )
        }
        None => u.to_string(),
    }
}

/// A prefix with its host in lowercase and no scheme.
fn normalise_prefix(p: &str) -> String {
    let p = p.split_once("://").map_or(p, |(_, rest)| rest);
    let (host, path) = p.split_at(p.find('/').unwrap_or(p.len()));
    format!("{}{path}", host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_cache::object::Object;

    fn object(url: &str, tags: &[&str]) -> Object {
        let host = url.split("://").nth(1).unwrap().split('/').next().unwrap();
        Object {
            encoded: Default::default(),
            status: 200,
            fields: Default::default(),
            body: bytes::Bytes::new(),
            meta: Meta {
                zone: "z".into(),
                url: url.into(),
                host: host.into(),
                tags: tags.iter().map(|t| Box::from(*t)).collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn each_kind_of_purge_matches_what_cloudflare_s_would() {
        let css = object("https://a.test/static/app.css", &["assets", "v2"]);
        let img = object("https://b.test/img/x.png?w=1", &[]);
        let p = |json: &str| Purge::from_json(json.as_bytes()).unwrap();
        assert!(p(r#"{"purge_everything": true}"#).matches("z", &img.meta));
        assert!(
            !p(r#"{"purge_everything": true}"#).matches("other", &img.meta),
            "one zone only"
        );
        assert!(p(r#"{"files": ["HTTPS://A.TEST/static/app.css"]}"#).matches("z", &css.meta));
        assert!(
            p(r#"{"files": [{"url": "https://b.test/img/x.png?w=1"}]}"#).matches("z", &img.meta)
        );
        assert!(!p(r#"{"files": ["https://b.test/img/x.png"]}"#).matches("z", &img.meta));
        assert!(p(r#"{"prefixes": ["a.test/static/"]}"#).matches("z", &css.meta));
        assert!(!p(r#"{"prefixes": ["a.test/img/"]}"#).matches("z", &css.meta));
        assert!(p(r#"{"hosts": ["B.test"]}"#).matches("z", &img.meta));
        assert!(p(r#"{"tags": ["ASSETS"]}"#).matches("z", &css.meta));
        assert!(!p(r#"{"tags": ["assets"]}"#).matches("z", &img.meta));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (body, says) in [
            ("nope", "not JSON"),
            ("[]", "JSON object"),
            ("{}", "exactly one"),
            (r#"{"purge_everything": false}"#, "must be true"),
            (r#"{"files": []}"#, "1 to 100"),
            (r#"{"files": "x"}"#, "must be an array"),
            (r#"{"tags": [1]}"#, "must be a string"),
            (r#"{"urls": ["x"]}"#, "unknown purge"),
        ] {
            let e = Purge::from_json(body.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }
}
