//! # rampart-rules
//!
//! ## Brief overview
//!
//! A fast, safe engine for the expression language of Cloudflare's Rules
//! (the language of firewall custom rules and rate limiting rules), so a
//! rule written for Cloudflare can be pasted into rampart and mean the same
//! thing. The crate does no I/O: it never reads a socket, a clock or a file.
//!
//! The pipeline has four steps:
//!
//! 1. **Scheme** — the host declares the fields expressions may read, each
//!    with a [`Type`]. [`Scheme::http`] is the standard HTTP scheme.
//! 2. **Parse** — [`Compiler::parse`] turns text into an [`Ast`] (syntax only).
//! 3. **Type-check and compile** — [`Compiler::compile_ast`] resolves fields
//!    and functions, checks every operator against its operand types, and
//!    builds regexes (linear-time, size-bounded), wildcard matchers, hash
//!    sets and IP prefix sets once. The result is a [`Filter`]; many rules
//!    become a [`RuleSet`], which adds a multi-pattern pre-filter.
//! 4. **Execute** — against an [`ExecutionContext`] over the host's
//!    [`FieldSource`], which supplies each field lazily and at most once per
//!    request.
//!
//! Every failure before execution is a [`CompileError`] with a span; its
//! `Display` shows the expression with a caret under the problem. Execution
//! cannot fail: a field the request does not supply is its type's empty
//! value, and a missing map key or array element makes a comparison false.
//! All work is bounded by [`ParserSettings`].
//!
//! ```
//! use rampart_rules::{Compiler, ExecutionContext, HttpRequestFields, Scheme};
//!
//! // 1. scheme
//! let scheme = Scheme::http();
//! // 2. parse
//! let mut compiler = Compiler::new(&scheme);
//! let ast = compiler.parse(r#"http.host eq "example.com" and not ip.src in {10.0.0.0/8}"#)?;
//! // 3. type-check and compile
//! let filter = compiler.compile_ast(&ast)?;
//! // 4. execute against a request
//! let request = HttpRequestFields {
//!     host: "example.com".into(),
//!     client_ip: Some("192.0.2.1".parse().unwrap()),
//!     ..Default::default()
//! };
//! let ctx = ExecutionContext::new(&scheme, &request);
//! assert!(filter.execute(&ctx));
//!
//! // Errors point at the problem.
//! let err = compiler.compile("http.request.uri.paht eq \"/\"").unwrap_err();
//! assert!(err.to_string().contains("did you mean `http.request.uri.path`?"));
//! # Ok::<(), rampart_rules::CompileError>(())
//! ```
//!
//! A zone's rules, in order, with actions of the host's choosing:
//!
//! ```
//! use rampart_rules::{Compiler, ExecutionContext, HttpRequestFields, Scheme};
//!
//! let scheme = Scheme::http();
//! let rules = Compiler::new(&scheme).compile_rules([
//!     ("r1", r#"http.request.uri.path contains "/wp-login.php""#),
//!     ("r2", "ip.src in {192.0.2.0/24} and not ssl"),
//! ])?;
//! let mut request = HttpRequestFields::from_parts(
//!     "GET", "/wp-login.php?x=1", "HTTP/1.1", vec![("Host".into(), b"example.com".to_vec())]);
//! request.client_ip = Some("192.0.2.7".parse().unwrap());
//! let ctx = ExecutionContext::new(&scheme, &request);
//! assert_eq!(rules.first_match(&ctx).map(|r| *r.action()), Some("r1"));
//! let all: Vec<&str> = rules.matches(&ctx).iter().map(|r| *r.action()).collect();
//! assert_eq!(all, ["r1", "r2"]);
//! # Ok::<(), rampart_rules::RuleError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod compile;
mod error;
mod exec;
mod functions;
mod http_body;
mod http_request;
mod http_scheme;
mod ipset;
mod lexer;
mod lists;
mod parse;
mod ruleset;
mod scheme;
mod types;

use std::borrow::Cow;
use std::fmt;

pub use error::{CompileError, ErrorKind, Span};
pub use exec::{ExecutionContext, FieldSource};
pub use http_request::{HttpRequestFields, header_map};
pub use http_scheme::HttpField;
pub use ipset::IpSet;
pub use lists::{List, Lists};
pub use parse::Ast;
pub use ruleset::{Rule, RuleSet};
pub use scheme::{FieldId, ParserSettings, Scheme, SchemeError};
pub use types::{MapValue, Type, Value};

/// The names of all functions of the language.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    functions::FUNCTIONS.iter().map(|f| f.name)
}

/// A compiled expression, ready to execute against any number of requests.
/// Cheap to share across threads (`Send + Sync`).
#[derive(Clone)]
pub struct Filter {
    root: exec::Node,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter").finish_non_exhaustive()
    }
}

impl Filter {
    /// Whether the request in `ctx` matches.
    pub fn execute(&self, ctx: &ExecutionContext<'_>) -> bool {
        self.root.eval_bool(ctx)
    }

    /// Whether the expression reads the field `id` (so a host can prepare only what its
    /// rules read: the request body, for instance).
    pub fn reads(&self, id: FieldId) -> bool {
        reads(&self.root, id)
    }
}

/// Compiles expressions against one scheme, with one set of limits and
/// named lists. Identical regexes and wildcards are compiled once and
/// shared across all the expressions a compiler builds.
///
/// ```
/// use rampart_rules::{Compiler, ErrorKind, IpSet, List, Lists, ParserSettings, Scheme};
///
/// let scheme = Scheme::http();
/// let mut lists = Lists::new();
/// lists.insert("office", List::Ip(IpSet::from_iter(["192.0.2.0/24".parse().unwrap()])));
/// let mut compiler = Compiler::new(&scheme)
///     .with_settings(ParserSettings { max_nesting_depth: 8, ..Default::default() })
///     .with_lists(lists);
/// assert!(compiler.compile("ip.src in $office").is_ok());
/// let err = compiler.compile("((((((((((ssl))))))))))").unwrap_err();
/// assert_eq!(err.kind(), &ErrorKind::NestingTooDeep { max: 8 });
/// ```
pub struct Compiler<'s> {
    scheme: &'s Scheme,
    settings: ParserSettings,
    lists: Lists,
    cache: compile::MatcherCache,
}

/// A rule of a list that did not compile: its position and the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// 0-based position of the rule in the input.
    pub index: usize,
    /// Why it did not compile.
    pub error: CompileError,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule #{}: {}", self.index + 1, self.error)
    }
}

impl std::error::Error for RuleError {}

/// A compiled expression whose value is a string rather than a truth: a redirect's target,
/// a header's value (`concat("https://", http.host, http.request.uri.path)`).
#[derive(Clone)]
pub struct StringExpr {
    root: exec::Node,
}

impl fmt::Debug for StringExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StringExpr").finish_non_exhaustive()
    }
}

impl StringExpr {
    /// The value for the request in `ctx`; `None` when it is missing (a function given a
    /// missing value, a map key that is not there).
    pub fn evaluate<'c>(&'c self, ctx: &'c ExecutionContext<'_>) -> Option<Cow<'c, [u8]>> {
        match self.root.eval(ctx)? {
            exec::Val::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Whether the expression reads the field `id`.
    pub fn reads(&self, id: FieldId) -> bool {
        reads(&self.root, id)
    }
}

fn reads(root: &exec::Node, id: FieldId) -> bool {
    let mut found = false;
    root.each_field(&mut |f| found |= f == id);
    found
}

impl<'s> Compiler<'s> {
    /// A compiler for `scheme` with default [`ParserSettings`] and no lists.
    pub fn new(scheme: &'s Scheme) -> Self {
        Compiler {
            scheme,
            settings: ParserSettings::default(),
            lists: Lists::new(),
            cache: compile::MatcherCache::default(),
        }
    }

    /// Replaces the limits.
    pub fn with_settings(mut self, settings: ParserSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Supplies the named lists that `in $name` may refer to.
    pub fn with_lists(mut self, lists: Lists) -> Self {
        self.lists = lists;
        self
    }

    /// The limits in force.
    pub fn settings(&self) -> &ParserSettings {
        &self.settings
    }

    /// Parses `expression` (syntax only; names and types are not checked yet).
    pub fn parse(&self, expression: &str) -> Result<Ast, CompileError> {
        parse::parse(expression, &self.settings)
    }

    /// Type-checks and compiles a parsed expression.
    pub fn compile_ast(&mut self, ast: &Ast) -> Result<Filter, CompileError> {
        Ok(Filter {
            root: self.checker(&ast.source).root(&ast.root)?,
        })
    }

    /// A type-checker of the expression `src` against this compiler's scheme and lists.
    fn checker<'c>(&'c mut self, src: &'c str) -> check::Checker<'c> {
        check::Checker {
            src,
            scheme: self.scheme,
            lists: &self.lists,
            settings: &self.settings,
            cache: &mut self.cache,
            fn_depth: 0,
        }
    }

    /// Parses, type-checks and compiles `expression`, whose value must be a string.
    pub fn compile_string(&mut self, expression: &str) -> Result<StringExpr, CompileError> {
        let ast = self.parse(expression)?;
        Ok(StringExpr {
            root: self.checker(&ast.source).root_string(&ast.root)?,
        })
    }

    /// Parses, type-checks and compiles `expression`.
    pub fn compile(&mut self, expression: &str) -> Result<Filter, CompileError> {
        let ast = self.parse(expression)?;
        self.compile_ast(&ast)
    }

    /// Compiles `(action, expression)` pairs into a [`RuleSet`], keeping
    /// their order. Stops at the first rule that does not compile.
    pub fn compile_rules<A, E: AsRef<str>>(
        &mut self,
        rules: impl IntoIterator<Item = (A, E)>,
    ) -> Result<RuleSet<A>, RuleError> {
        let mut compiled = Vec::new();
        for (index, (action, expr)) in rules.into_iter().enumerate() {
            let filter = self
                .compile(expr.as_ref())
                .map_err(|error| RuleError { index, error })?;
            compiled.push(Rule::new(action, filter));
        }
        Ok(RuleSet::new(compiled))
    }
}

/// Fuzzing entry point (used by `fuzz/fuzz_targets/rules_compile.rs`):
/// compiles `data` as an expression against the HTTP scheme and, when it
/// compiles, executes it against a small request. Must never panic.
#[doc(hidden)]
pub fn fuzz_compile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scheme = Scheme::http();
    let mut lists = Lists::new();
    lists.insert("ips", List::Ip(IpSet::new()));
    lists.insert("names", List::Bytes(Default::default()));
    let mut compiler = Compiler::new(&scheme).with_lists(lists);
    let Ok(filter) = compiler.compile(text) else {
        return;
    };
    let mut request = HttpRequestFields::from_parts(
        "POST",
        "/a/b.php?x=1&y=%2541",
        "HTTP/1.1",
        vec![
            ("Host".into(), b"example.com".to_vec()),
            ("Cookie".into(), b"a=1; b=2".to_vec()),
            ("X-B64".into(), b"aGVsbG8=".to_vec()),
        ],
    );
    request.body = br#"{"a":[1,"x",{"b":2}]}"#.to_vec();
    request.client_ip = Some(std::net::IpAddr::from([192, 0, 2, 1]));
    let ctx = ExecutionContext::new(&scheme, &request);
    let _ = filter.execute(&ctx);
    let rules = RuleSet::new(vec![Rule::new((), filter)]);
    let _ = rules.matches(&ctx);
}
