//! Every protocol section the rustdoc cites is a heading of `docs/protocol.md`.
//!
//! The rustdoc under `src/` cites the protocol reference as "protocol.md §6.9" (or just
//! "§7.3" in a paragraph that already named it) and "Appendix D". This test collects every
//! such citation from every `.rs` file under `src/` and checks that `docs/protocol.md` has
//! a heading for it.
//!
//! The heading convention: a markdown heading (`#`s, a space, outside code fences) whose
//! text starts with the section number as its own token, `§` included, then a space:
//! `## §6 State-machine behaviours`, `### §6.9 Disconnect and drain grace`. An appendix is
//! a heading whose text starts with `Appendix X` followed by a space. Numbers are unique.
//!
//! A `§` that belongs to another document is not a citation of protocol.md: one right after
//! `RFC <number>` (`RFC 6455 §3`) or after another file name ending in `.md`
//! (`design.md §5`), and the citations that follow such a one in a list (`design.md §4, §5`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One citation: the section (`"6.9"` or `"Appendix D"`) and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Citation {
    section: String,
    place: String,
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The section number right after a `§`: digits, then `.digits` groups (`6`, `6.9`,
/// `11.2`); a trailing `.` that ends a sentence is not part of it.
fn section_number(after: &str) -> Option<String> {
    let mut number = String::new();
    let mut chars = after.chars().peekable();
    loop {
        let digits: String = std::iter::from_fn(|| chars.next_if(char::is_ascii_digit)).collect();
        if digits.is_empty() {
            // Nothing after `§`, or a `.` with no digit after it (end of a sentence).
            return if number.is_empty() {
                None
            } else {
                Some(number)
            };
        }
        if !number.is_empty() {
            number.push('.');
        }
        number.push_str(&digits);
        let mut lookahead = chars.clone();
        if lookahead.next() == Some('.') && lookahead.peek().is_some_and(char::is_ascii_digit) {
            chars.next();
        } else {
            return Some(number);
        }
    }
}

/// Whether the words just before a `§` name another document: `RFC 6455 §3`,
/// `design.md §5`. `None` when the previous word is itself a citation (`§6.10, §7`): the
/// caller then keeps the answer of the citation before it.
fn names_other_document(before: &str) -> Option<bool> {
    let mut words = before
        .split_whitespace()
        .rev()
        .map(|w| w.trim_matches(|c: char| "([{\"'`*".contains(c)));
    let last = words.next().unwrap_or_default();
    if last.starts_with('§') {
        return None;
    }
    if last.ends_with(".md") {
        return Some(last != "protocol.md");
    }
    let rfc = last.chars().all(|c| c.is_ascii_digit())
        && !last.is_empty()
        && words.next().is_some_and(|w| w.eq_ignore_ascii_case("RFC"));
    Some(rfc)
}

/// The protocol.md citations in one file's text, each with `place` `file:line`.
fn citations_in(text: &str, file: &str) -> Vec<Citation> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let place = format!("{file}:{}", index + 1);
        let mut foreign = false;
        for (at, _) in line.match_indices('§') {
            let Some(section) = section_number(&line[at + '§'.len_utf8()..]) else {
                continue;
            };
            if let Some(other) = names_other_document(&line[..at]) {
                foreign = other;
            }
            if !foreign {
                found.push(Citation {
                    section,
                    place: place.clone(),
                });
            }
        }
        for (at, _) in line.match_indices("Appendix ") {
            let letter = line[at + "Appendix ".len()..].chars().next();
            let after = line[at + "Appendix ".len()..].chars().nth(1);
            if let Some(letter) = letter.filter(char::is_ascii_uppercase) {
                if !after.is_some_and(char::is_alphanumeric) {
                    found.push(Citation {
                        section: format!("Appendix {letter}"),
                        place: place.clone(),
                    });
                }
            }
        }
    }
    found
}

/// The section of each heading of a markdown document that follows the convention, with
/// its line number, in order. Headings inside code fences are not headings.
fn headings(markdown: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut in_fence = false;
    for (index, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let Some(text) = line
            .strip_prefix('#')
            .map(|rest| rest.trim_start_matches('#'))
            .and_then(|rest| rest.strip_prefix(' '))
        else {
            continue;
        };
        let (token, rest) = text.split_once(' ').unwrap_or((text, ""));
        if let Some(number) = token.strip_prefix('§') {
            // The whole token is the number: `§6.9` yes, `§6.9:` or `§6.` no.
            if section_number(number).as_deref() == Some(number) && !rest.is_empty() {
                found.push((number.to_owned(), index + 1));
            }
        } else if token == "Appendix" {
            let (letter, title) = rest.split_once(' ').unwrap_or((rest, ""));
            if letter.len() == 1
                && letter.chars().all(|c| c.is_ascii_uppercase())
                && !title.is_empty()
            {
                found.push((format!("Appendix {letter}"), index + 1));
            }
        }
    }
    found
}

/// Cited sections missing from `headings`, each with the places that cite it.
fn missing(citations: &[Citation], headings: &[(String, usize)]) -> BTreeMap<String, Vec<String>> {
    let present: BTreeSet<&str> = headings.iter().map(|(s, _)| s.as_str()).collect();
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in citations {
        if !present.contains(c.section.as_str()) {
            missing
                .entry(c.section.clone())
                .or_default()
                .push(c.place.clone());
        }
    }
    missing
}

/// Heading numbers that appear more than once, with their line numbers.
fn duplicates(headings: &[(String, usize)]) -> BTreeMap<String, Vec<usize>> {
    let mut lines: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (section, line) in headings {
        lines.entry(section.clone()).or_default().push(*line);
    }
    lines.retain(|_, l| l.len() > 1);
    lines
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every protocol.md citation under `src/`.
fn source_citations() -> Vec<Citation> {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut citations = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let name = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        citations.extend(citations_in(&text, &name));
    }
    citations
}

fn protocol_headings() -> Vec<(String, usize)> {
    let path = root().join("docs/protocol.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    headings(&text)
}

fn report(missing: &BTreeMap<String, Vec<String>>) -> String {
    missing
        .iter()
        .map(|(section, places)| {
            let what = if section.starts_with("Appendix") {
                section.clone()
            } else {
                format!("§{section}")
            };
            format!("  {what}, cited at {}", places.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_cited_section_is_a_heading_of_protocol_md() {
    let citations = source_citations();
    // Guards against a collector that silently finds nothing (the rustdoc cites ~90).
    assert!(
        citations.len() >= 40,
        "only {} citations found under src/: is the collector broken?",
        citations.len()
    );
    let missing = missing(&citations, &protocol_headings());
    assert!(
        missing.is_empty(),
        "docs/protocol.md has no heading (`### §x.y Title`) for these cited sections:\n{}",
        report(&missing)
    );
}

#[test]
fn protocol_md_section_numbers_are_unique() {
    let headings = protocol_headings();
    assert!(
        headings.len() >= 40,
        "only {} numbered headings",
        headings.len()
    );
    let duplicates = duplicates(&headings);
    assert!(
        duplicates.is_empty(),
        "docs/protocol.md numbers these sections more than once (section: lines): {duplicates:?}"
    );
}

#[test]
fn the_collector_reads_citations_as_the_rustdoc_writes_them() {
    let text = "\
//! Disconnect (protocol.md §6.9). Bytes (§1.5): lines.
/// The end (protocol.md §6.10, §7): routes (§5.1–§5.2) and #22 (§11.2 #22).
/// The session (protocol.md §9).
/// Not ours: RFC 6455 §3, RFC 3986 §3.1, design.md §4, §5 and (design.md §8.1).
/// Ours again after another document: design.md §4 item 15 and protocol.md §1.2, Appendix B.
/// Appendix D (protocol.md §6.4, Appendix D) but not Appendixes or Appendix x.
";
    let sections: Vec<String> = citations_in(text, "f.rs")
        .into_iter()
        .map(|c| format!("{} {}", c.section, c.place))
        .collect();
    assert_eq!(
        sections,
        [
            "6.9 f.rs:1",
            "1.5 f.rs:1",
            "6.10 f.rs:2",
            "7 f.rs:2",
            "5.1 f.rs:2",
            "5.2 f.rs:2",
            "11.2 f.rs:2",
            "9 f.rs:3",
            "1.2 f.rs:5",
            "Appendix B f.rs:5",
            "6.4 f.rs:6",
            "Appendix D f.rs:6",
            "Appendix D f.rs:6",
        ]
    );
}

#[test]
fn a_missing_or_repeated_heading_is_reported() {
    let doc = "\
# Title
## §6 State
### §6.9 Disconnect
### 6.10 Reader exit (no `§`: not the convention)
### §6.10: Reader exit (the token is `§6.10:`)
```
### §7.3 inside a code fence
```
## Appendix D — connector
### §6.9 Disconnect again
";
    let headings = headings(doc);
    let numbers: Vec<&str> = headings.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(numbers, ["6", "6.9", "Appendix D", "6.9"]);
    assert_eq!(
        duplicates(&headings),
        BTreeMap::from([("6.9".to_owned(), vec![3, 10])])
    );

    let citations = citations_in("/// (protocol.md §6.9, §6.10, §7.3, Appendix D)", "a.rs");
    let missing = missing(&citations, &headings);
    assert_eq!(
        report(&missing),
        "  §6.10, cited at a.rs:1\n  §7.3, cited at a.rs:1"
    );
}
