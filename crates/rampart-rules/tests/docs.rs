//! Every example in the language reference (docs/rules.md) compiles.

use rampart_rules::{Compiler, Scheme, function_names};

fn reference() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.md");
    std::fs::read_to_string(path).expect("docs/rules.md exists")
}

/// The example column (the last cell) of every table row that holds one.
fn table_examples(doc: &str) -> Vec<String> {
    doc.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            let last = cells.last()?.trim();
            let code = last.strip_prefix('`')?.strip_suffix('`')?;
            // Skip cells that are types or names rather than expressions.
            let expression =
                !code.contains('`') && (code.contains(' ') || code.contains('(') || code == "ssl");
            expression.then(|| code.replace("\\|", "|"))
        })
        .collect()
}

#[test]
fn every_table_example_compiles() {
    let doc = reference();
    let examples = table_examples(&doc);
    assert!(
        examples.len() >= 33,
        "found only {} examples",
        examples.len()
    );
    let scheme = Scheme::http();
    let mut compiler = Compiler::new(&scheme);
    for e in &examples {
        if let Err(err) = compiler.compile(e) {
            panic!("docs/rules.md example does not compile: {e}\n{err}");
        }
    }
}

#[test]
fn every_function_is_documented_with_an_example() {
    let doc = reference();
    for f in function_names() {
        assert!(
            doc.contains(&format!("| `{f}` |")),
            "{f} has no row in docs/rules.md"
        );
        assert!(
            doc.contains(&format!("`{f}(")),
            "{f} has no example in docs/rules.md"
        );
    }
    for op in [
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "contains",
        "matches",
        "wildcard",
        "strict wildcard",
        "in",
        "not",
        "and",
        "xor",
        "or",
    ] {
        assert!(
            doc.contains(&format!("| `{op}`")),
            "operator {op} is not documented"
        );
    }
}
