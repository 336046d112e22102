//! What the suite prints: one row per fault, with what was expected and what was seen, as a
//! Markdown table that reads in a terminal and pastes into a document.

use std::fmt::Write as _;
use std::time::Duration;

/// Whether a row's expectation held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// What was seen is what was expected.
    Met,
    /// It was not.
    NotMet,
    /// The environment cannot stage this fault; `seen` says why.
    Skipped,
}

/// One fault: what was done, what should happen, and what did.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) fault: String,
    pub(crate) expected: String,
    pub(crate) seen: String,
    pub(crate) verdict: Verdict,
}

impl Row {
    /// A row whose expectation held if `met`.
    pub(crate) fn checked(
        fault: impl Into<String>,
        expected: impl Into<String>,
        met: bool,
        seen: impl Into<String>,
    ) -> Self {
        let verdict = if met { Verdict::Met } else { Verdict::NotMet };
        Self {
            fault: fault.into(),
            expected: expected.into(),
            seen: seen.into(),
            verdict,
        }
    }

    /// A row for a fault the environment cannot stage, and why: never a silent pass.
    pub(crate) fn skipped(
        fault: impl Into<String>,
        expected: impl Into<String>,
        why: impl std::fmt::Display,
    ) -> Self {
        Self {
            fault: fault.into(),
            expected: expected.into(),
            seen: format!("skipped: {why}"),
            verdict: Verdict::Skipped,
        }
    }
}

/// The rows as a Markdown table, columns padded to line up.
pub(crate) fn render(rows: &[Row]) -> String {
    let cells: Vec<[&str; 4]> = rows
        .iter()
        .map(|row| {
            let verdict = match row.verdict {
                Verdict::Met => "ok",
                Verdict::NotMet => "FAILED",
                Verdict::Skipped => "skipped",
            };
            [&row.fault, &row.expected, &row.seen, verdict]
        })
        .collect();
    let header = ["fault", "expected", "seen", ""];
    let mut widths = header.map(|cell| cell.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut line = String::from("|");
        for (cell, width) in cells.iter().zip(widths) {
            let _ = write!(line, " {cell:<width$} |");
        }
        line
    };
    let mut table = line(header);
    table.push('\n');
    table.push_str(&line(widths.map(|_| "")).replace(' ', "-"));
    for row in cells {
        table.push('\n');
        table.push_str(&line(row));
    }
    table
}

/// A setting as the command line spells it, and so as expectations cite it: `2s`.
pub(crate) fn setting(value: Duration) -> String {
    humantime::format_duration(value).to_string()
}

/// `took` as a person reads it: milliseconds under a second, else seconds to 10 ms.
pub(crate) fn duration(took: Duration) -> String {
    if took < Duration::from_secs(1) {
        format!("{} ms", took.as_millis())
    } else {
        format!("{:.2} s", took.as_secs_f64())
    }
}

/// The shortest and longest of `durations` as `3–9 ms`, or one value if they agree.
pub(crate) fn span(durations: impl IntoIterator<Item = Duration>) -> String {
    let mut durations = durations.into_iter();
    let Some(first) = durations.next() else {
        return "-".to_owned();
    };
    let (low, high) = durations.fold((first, first), |(low, high), took| {
        (low.min(took), high.max(took))
    });
    let (low, high) = (duration(low), duration(high));
    if low == high {
        return low;
    }
    match (low.split_once(' '), high.split_once(' ')) {
        (Some((low, unit)), Some((high, same))) if unit == same => format!("{low}–{high} {unit}"),
        _ => format!("{low}–{high}"),
    }
}

/// `items` grouped by key, in the order the keys first appear.
pub(crate) fn grouped<K: PartialEq, V>(
    items: impl IntoIterator<Item = (K, V)>,
) -> Vec<(K, Vec<V>)> {
    let mut groups: Vec<(K, Vec<V>)> = Vec::new();
    for (key, value) in items {
        match groups.iter_mut().find(|(seen, _)| *seen == key) {
            Some((_, values)) => values.push(value),
            None => groups.push((key, vec![value])),
        }
    }
    groups
}

/// `1,000` for 1000.
pub(crate) fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (at, digit) in digits.chars().enumerate() {
        if at > 0 && (digits.len() - at).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}
