//! How a search ranks strategies: the one rule the daemon's `strategies.list` (its
//! `query`) and the terminal UI's search both follow.
//!
//! A query is words (split on white space, lowercased); a strategy matches when every
//! word occurs in its search text. Each word scores its best occurrence:
//!
//! | where the word occurs | name, display name, tags | category, sub-category, description, keywords |
//! |---|---|---|
//! | a whole word (`rsi` in `native_rsi`) | 6 | 4 |
//! | the start of a word (`mom` in `momentum`) | 5 | 3 |
//! | inside a word (`rsi` in `mean_reversion`) | 2 | 1 |
//!
//! so a strategy named for the word comes before one that only mentions it, and both
//! before one where the letters merely occur inside another word; such matches are kept,
//! last. A strategy's score is the sum of its words' scores; best first, ties in name
//! order. Words are runs of letters and digits: `_`, `-`, spaces and punctuation
//! separate them.
//!
//! The search text ([`push_search_text`]) is the fields lowercased, the first group (name,
//! display name, tags) and the second group separated by [`SECONDARY`], control
//! characters as spaces; a query word never holds one ([`query_words`]), so a match never
//! spans two strategies or two groups.

use crate::strategy::StrategySummary;

/// Separates a search text's name fields from the others.
pub const SECONDARY: u8 = 0x1f;

/// The best score one word can have.
pub const BEST: u16 = 6;

/// The lowercase words of a query (control characters count as spaces).
pub fn query_words(query: &str) -> Vec<String> {
    query
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Appends a strategy's search text: its name, display name and tags, [`SECONDARY`], its
/// category, sub-category, description and `keywords` (which the list entry lacks).
pub fn push_search_text<'a>(
    out: &mut Vec<u8>,
    s: &StrategySummary,
    keywords: impl IntoIterator<Item = &'a str>,
) {
    let primary = [s.name.as_str(), s.display_name.as_str()]
        .into_iter()
        .chain(s.tags.iter().map(String::as_str));
    for part in primary {
        push_lower(out, part);
        out.push(b' ');
    }
    out.push(SECONDARY);
    for part in [&s.category, &s.sub_category, &s.description] {
        out.push(b' ');
        push_lower(out, part);
    }
    for part in keywords {
        out.push(b' ');
        push_lower(out, part);
    }
}

/// A strategy's search text as a string (the terminal UI keeps one per strategy).
pub fn search_text(s: &StrategySummary) -> Box<str> {
    let mut out = Vec::with_capacity(128 + s.description.len());
    push_search_text(&mut out, s, []);
    String::from_utf8(out)
        .expect("lowercased text and ASCII separators are UTF-8")
        .into_boxed_str()
}

fn push_lower(out: &mut Vec<u8>, part: &str) {
    if part.is_ascii() {
        out.extend(part.bytes().map(|b| {
            if b.is_ascii_control() {
                b' '
            } else {
                b.to_ascii_lowercase()
            }
        }));
    } else {
        let mut buf = [0u8; 4];
        for c in part.chars().flat_map(char::to_lowercase) {
            let c = if c.is_control() { ' ' } else { c };
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Whether a byte belongs to a word: an ASCII letter or digit, or part of a non-ASCII
/// character (accented letters are letters).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// The score of one occurrence of a word: `text[at..at + len]`, in a text whose second
/// group starts at `secondary_from` (positions in the same text; anything before `at` and
/// after the occurrence only matters for its two neighbouring bytes).
pub fn occurrence_score(text: &[u8], at: usize, len: usize, secondary_from: usize) -> u16 {
    let starts_word = at == 0 || !is_word_byte(text[at - 1]);
    let ends_word = text.get(at + len).is_none_or(|&b| !is_word_byte(b));
    let primary = at < secondary_from;
    match (starts_word, ends_word, primary) {
        (true, true, true) => 6,
        (true, false, true) => 5,
        (true, true, false) => 4,
        (true, false, false) => 3,
        (false, _, true) => 2,
        (false, _, false) => 1,
    }
}

/// The score of one strategy's search text (from [`push_search_text`]) for a query's
/// words; `None` when a word does not occur in it.
pub fn score(text: &str, words: &[String]) -> Option<u32> {
    let bytes = text.as_bytes();
    let secondary_from = bytes
        .iter()
        .position(|&b| b == SECONDARY)
        .unwrap_or(bytes.len());
    let mut total = 0u32;
    for word in words {
        let mut best = 0u16;
        let mut from = 0;
        while let Some(found) = text.get(from..).and_then(|t| t.find(word.as_str())) {
            let at = from + found;
            best = best.max(occurrence_score(bytes, at, word.len(), secondary_from));
            if best == BEST {
                break;
            }
            from = at + text[at..].chars().next().map_or(1, char::len_utf8);
        }
        if best == 0 {
            return None;
        }
        total += u32::from(best);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::StrategyDocument;

    /// The seed's 11 strategies (data/strategy_registry), as the registry lists them.
    fn seed() -> Vec<StrategySummary> {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/strategy_registry/metadata"
        );
        let mut all: Vec<StrategySummary> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let doc: StrategyDocument =
                    serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
                doc.summary(false)
            })
            .collect();
        all.sort_by_key(|s| s.display_name.to_lowercase());
        all
    }

    /// The display names `query` finds, best first, ties in name order (what the daemon
    /// and the terminal UI show).
    fn ranked(all: &[StrategySummary], query: &str) -> Vec<(String, u32)> {
        let words = query_words(query);
        let mut found: Vec<(String, u32)> = all
            .iter()
            .filter_map(|s| Some((s.display_name.clone(), score(&search_text(s), &words)?)))
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.1)); // stable: name order among equals
        found
    }

    fn names(found: &[(String, u32)]) -> Vec<&str> {
        found.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn rsi_finds_the_rsi_strategies_first_and_mere_letters_last() {
        let found = ranked(&seed(), "rsi");
        assert_eq!(
            names(&found),
            [
                // "rsi" is a word of their names and tags.
                "Freqtrade Aggressive RSI",
                "Freqtrade Conservative RSI",
                "RSI",
                // "a volume-weighted RSI": a word of the description.
                "MFI",
                // Only the letters, inside "mean_reversion" and "reversion".
                "Statistical Arbitrage Pairs Trading",
                "VWAP",
            ],
            "{found:?}"
        );
        assert_eq!(
            found.iter().map(|f| f.1).collect::<Vec<_>>(),
            [6, 6, 6, 4, 2, 2]
        );
    }

    #[test]
    fn words_and_prefixes_come_before_letters_inside_words() {
        let all = seed();
        // "carry" is the carry trade's name and category; nothing else has the word.
        assert_eq!(names(&ranked(&all, "carry")), ["Currency Carry Trade"]);
        // A prefix of names and tags: every momentum strategy, in name order.
        let mom = ranked(&all, "MOM");
        assert!(mom.iter().all(|(_, s)| *s == 5), "{mom:?}");
        assert_eq!(
            names(&mom),
            [
                "Freqtrade MACD Hunter",
                "MACD",
                "Momentum",
                "Volatility-Managed Momentum"
            ]
        );
        // Two words: both must occur; the scores add up.
        assert_eq!(
            ranked(&all, "macd momentum"),
            [
                ("Freqtrade MACD Hunter".to_string(), 12),
                ("MACD".to_string(), 12)
            ]
        );
        assert!(ranked(&all, "rsi kalman").is_empty());
    }

    #[test]
    fn each_kind_of_match_scores_as_the_table_says() {
        let base = seed().into_iter().find(|s| s.name == "native_rsi").unwrap();
        let with = |name: &str, tags: &[&str], description: &str| {
            let mut s = base.clone();
            s.name = name.into();
            s.display_name = name.into();
            s.tags = tags.iter().map(|t| t.to_string()).collect();
            s.description = description.into();
            s.category = "misc".into();
            s.sub_category = String::new();
            search_text(&s)
        };
        let words = query_words("wave");
        let score_of = |text: &str| score(text, &words);
        assert_eq!(score_of(&with("wave", &[], "")), Some(6));
        assert_eq!(score_of(&with("x", &["elliott-wave"], "")), Some(6));
        assert_eq!(score_of(&with("waves", &[], "")), Some(5));
        assert_eq!(score_of(&with("x", &[], "a wave rider")), Some(4));
        assert_eq!(score_of(&with("x", &[], "wavelets")), Some(3));
        assert_eq!(score_of(&with("microwave", &[], "")), Some(2));
        assert_eq!(score_of(&with("x", &[], "microwaves")), Some(1));
        assert_eq!(score_of(&with("x", &[], "")), None);
        // The best occurrence counts: a substring first, the word later.
        assert_eq!(score_of(&with("microwave", &["wave"], "")), Some(6));
        // Accented letters are letters: "é" does not end a word.
        assert_eq!(score(&with("ondé", &[], ""), &query_words("ond")), Some(5));
        assert_eq!(score(&with("ondé", &[], ""), &query_words("ONDÉ")), Some(6));
    }

    #[test]
    fn query_words_are_lowercase_and_never_hold_a_separator() {
        assert_eq!(query_words("  RSI\tMacd\u{1f}x\n"), ["rsi", "macd", "x"]);
        assert!(query_words(" \u{1f} ").is_empty());
        // No words: everything matches, all equal.
        assert_eq!(score("anything", &[]), Some(0));
    }
}
