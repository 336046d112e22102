//! Rust source as the module graph needs it: identifiers, `::` and punctuation, each with its
//! line. Comments (doc comments too) are dropped, so prose that mentions `crate::x` is no
//! import; string, character and number literals become one opaque [`Token::Literal`], so no
//! `"super::"` inside them is either. This is not a full Rust lexer: it only has to tell
//! code from comments and literals, and keep the brackets that say where a module ends.

/// One token of Rust source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// An identifier or keyword; a raw identifier keeps its `r#`, so `r#mod` is no keyword.
    Ident(&'a str),
    /// `::`.
    PathSep,
    /// Any other punctuation character, one at a time: `{`, `;`, `#`, `:`, ...
    Punct(char),
    /// A string, byte string, character or number literal, whose text is of no interest.
    Literal,
}

/// A token and the line it starts on, counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Lexeme<'a> {
    /// The token.
    pub(super) token: Token<'a>,
    /// Where it starts.
    pub(super) line: u32,
}

/// The tokens of `source`, without its comments. Malformed source (an unclosed string or
/// comment) simply ends the tokens early: rustc reports it better than this could.
pub(super) fn tokenize(source: &str) -> Vec<Lexeme<'_>> {
    Lexer {
        source,
        bytes: source.as_bytes(),
        at: 0,
        line: 1,
    }
    .collect()
}

/// Whether `byte` may continue an identifier. Bytes of multi-byte UTF-8 characters count,
/// as Rust allows non-ASCII identifiers, and it keeps every slice on a character boundary.
fn is_ident_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || !byte.is_ascii()
}

/// A cursor over the source's bytes. Every byte that matters to the lexer is ASCII, so
/// working on bytes is exact.
struct Lexer<'a> {
    source: &'a str,
    bytes: &'a [u8],
    at: usize,
    line: u32,
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Lexeme<'a>;

    fn next(&mut self) -> Option<Lexeme<'a>> {
        loop {
            let byte = *self.bytes.get(self.at)?;
            let line = self.line;
            let token = match byte {
                b'\n' => {
                    self.line += 1;
                    self.at += 1;
                    continue;
                }
                _ if byte.is_ascii_whitespace() => {
                    self.at += 1;
                    continue;
                }
                b'/' if self.peek(1) == Some(b'/') => {
                    self.skip_line_comment();
                    continue;
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    self.skip_block_comment();
                    continue;
                }
                b'"' => {
                    self.skip_string();
                    Token::Literal
                }
                b'\'' => match self.char_literal_len() {
                    Some(len) => {
                        self.at += len;
                        Token::Literal
                    }
                    // A lifetime or label: its name follows as an identifier.
                    None => {
                        self.at += 1;
                        Token::Punct('\'')
                    }
                },
                b':' if self.peek(1) == Some(b':') => {
                    self.at += 2;
                    Token::PathSep
                }
                b'0'..=b'9' => {
                    self.skip_number();
                    Token::Literal
                }
                _ if is_ident_byte(byte) => self.ident_or_prefixed_literal(),
                _ => {
                    self.at += 1;
                    Token::Punct(char::from(byte))
                }
            };
            return Some(Lexeme { token, line });
        }
    }
}

impl<'a> Lexer<'a> {
    /// The byte `offset` bytes ahead of the cursor.
    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.at + offset).copied()
    }

    /// Moves the cursor one byte, counting lines.
    fn advance(&mut self) {
        if self.bytes.get(self.at) == Some(&b'\n') {
            self.line += 1;
        }
        self.at += 1;
    }

    fn skip_line_comment(&mut self) {
        while self.peek(0).is_some_and(|byte| byte != b'\n') {
            self.at += 1;
        }
    }

    /// Skips a `/* */` comment, which nests.
    fn skip_block_comment(&mut self) {
        let mut depth = 0_usize;
        while let Some(byte) = self.peek(0) {
            match (byte, self.peek(1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.at += 2;
                }
                (b'*', Some(b'/')) => {
                    self.at += 2;
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => self.advance(),
            }
        }
    }

    /// Skips a `"..."` string from its opening quote, escapes included.
    fn skip_string(&mut self) {
        self.at += 1;
        while let Some(byte) = self.peek(0) {
            match byte {
                b'\\' => {
                    self.at += 1;
                    self.advance();
                }
                b'"' => {
                    self.at += 1;
                    return;
                }
                _ => self.advance(),
            }
        }
    }

    /// Skips a raw string from its `#`s or opening quote: `r#"..."#` ends at a quote followed
    /// by as many `#`s as it opened with.
    fn skip_raw_string(&mut self) {
        let mut hashes = 0;
        while self.peek(0) == Some(b'#') {
            hashes += 1;
            self.at += 1;
        }
        self.at += 1;
        while let Some(byte) = self.peek(0) {
            self.advance();
            if byte == b'"' && (0..hashes).all(|offset| self.peek(offset) == Some(b'#')) {
                self.at += hashes;
                return;
            }
        }
    }

    /// The length of the character literal at the cursor, or `None` if the quote starts a
    /// lifetime or a label: `'a'` and `'\n'` are characters, `'a` in `&'a str` is not.
    fn char_literal_len(&self) -> Option<usize> {
        let rest = self.source.get(self.at + 1..)?;
        if rest.starts_with('\\') {
            // An escape: `'\''`, `'\\'`, `'\u{1F600}'`. Its closing quote is the first one
            // after the escaped character.
            let close = rest.get(2..)?.find('\'')?;
            return Some(close + 4);
        }
        let first = rest.chars().next()?;
        let after = first.len_utf8();
        (rest.as_bytes().get(after) == Some(&b'\'')).then_some(after + 2)
    }

    /// Skips a number, its suffix and a fractional part: `1`, `0x1f`, `1_000u32`, `2.5`.
    fn skip_number(&mut self) {
        while let Some(byte) = self.peek(0) {
            let fraction = byte == b'.' && self.peek(1).is_some_and(|next| next.is_ascii_digit());
            if !(is_ident_byte(byte) || fraction) {
                return;
            }
            self.at += 1;
        }
    }

    /// An identifier, or a literal that starts like one: `b"..."`, `c"..."`, `r"..."`,
    /// `br#"..."#`, `b'x'`. `r#name` is a raw identifier.
    fn ident_or_prefixed_literal(&mut self) -> Token<'a> {
        let start = self.at;
        while self.peek(0).is_some_and(is_ident_byte) {
            self.at += 1;
        }
        let word = &self.source[start..self.at];
        let next = self.peek(0);
        match (word, next) {
            ("b" | "c", Some(b'"')) => {
                self.skip_string();
                Token::Literal
            }
            ("b", Some(b'\'')) => {
                let len = self.char_literal_len().unwrap_or(1);
                self.at += len;
                Token::Literal
            }
            ("r" | "br" | "cr", Some(b'"' | b'#')) if self.opens_raw_string() => {
                self.skip_raw_string();
                Token::Literal
            }
            ("r", Some(b'#')) => {
                self.at += 1;
                while self.peek(0).is_some_and(is_ident_byte) {
                    self.at += 1;
                }
                Token::Ident(&self.source[start..self.at])
            }
            _ => Token::Ident(word),
        }
    }

    /// Whether the `#`s (if any) at the cursor are followed by a quote.
    fn opens_raw_string(&self) -> bool {
        let hashes = self.bytes[self.at..]
            .iter()
            .take_while(|&&byte| byte == b'#')
            .count();
        self.peek(hashes) == Some(b'"')
    }
}

#[cfg(test)]
mod tests {
    use super::{Lexeme, Token, tokenize};

    /// The tokens of `source`, without their lines.
    fn tokens(source: &str) -> Vec<Token<'_>> {
        tokenize(source)
            .into_iter()
            .map(|lexeme| lexeme.token)
            .collect()
    }

    #[test]
    fn a_path_is_identifiers_between_path_separators() {
        assert_eq!(
            tokens("use crate::a::{b, c};"),
            [
                Token::Ident("use"),
                Token::Ident("crate"),
                Token::PathSep,
                Token::Ident("a"),
                Token::PathSep,
                Token::Punct('{'),
                Token::Ident("b"),
                Token::Punct(','),
                Token::Ident("c"),
                Token::Punct('}'),
                Token::Punct(';'),
            ]
        );
    }

    #[test]
    fn comments_of_every_kind_are_dropped() {
        let source =
            "//! see crate::x\n/// and super::y\n/* crate::z /* nested */ */ a // crate::w\nb";
        assert_eq!(tokens(source), [Token::Ident("a"), Token::Ident("b")]);
    }

    #[test]
    fn string_literals_are_opaque() {
        let source =
            r####"x("super::a", b"crate::b", r#"super::"c"#, br##"self::d"##, c"e\"::f")"####;
        let idents: Vec<Token<'_>> = tokens(source)
            .into_iter()
            .filter(|token| matches!(token, Token::Ident(_)))
            .collect();
        assert_eq!(idents, [Token::Ident("x")]);
    }

    #[test]
    fn character_literals_are_told_from_lifetimes() {
        assert_eq!(
            tokens(r"'{' '\'' b'}' '\u{7d}' &'a x"),
            [
                Token::Literal,
                Token::Literal,
                Token::Literal,
                Token::Literal,
                Token::Punct('&'),
                Token::Punct('\''),
                Token::Ident("a"),
                Token::Ident("x"),
            ]
        );
    }

    #[test]
    fn raw_identifiers_keep_their_prefix_and_numbers_are_literals() {
        assert_eq!(
            tokens("r#mod 1_000u32 2.5 x.0"),
            [
                Token::Ident("r#mod"),
                Token::Literal,
                Token::Literal,
                Token::Ident("x"),
                Token::Punct('.'),
                Token::Literal,
            ]
        );
    }

    #[test]
    fn lines_count_the_newlines_inside_comments_and_strings() {
        let source = "a\n/* one\ntwo */ \"three\nfour\" b";
        let lines: Vec<u32> = tokenize(source)
            .iter()
            .map(|Lexeme { line, .. }| *line)
            .collect();
        assert_eq!(lines, [1, 3, 4]);
    }
}
