//! Lexicon descriptions turned into Rust doc comments.
//!
//! Descriptions are written for humans reading JSON, not for rustdoc's Markdown, so they are
//! cleaned before they become `#[doc = "…"]` lines:
//!
//! * bare `http(s)://` URLs are wrapped in `<…>` so rustdoc links them instead of warning;
//! * `[` and `]` are escaped, so `[x]` is not taken for an intra-doc link;
//! * a stray `<` or `>` is escaped, so it is not taken for HTML;
//! * fenced code blocks are marked `text`, so rustdoc does not compile them as doctests;
//! * every line starts with a space (`/// text`, not `///text`).

/// Cleans a description into doc lines, each starting with a space (empty lines stay empty).
pub fn doc_lines(description: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for raw in description.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            if in_fence {
                out.push(" ```".to_owned());
            } else {
                out.push(" ```text".to_owned());
            }
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            out.push(format!(" {line}"));
            continue;
        }
        if line.is_empty() {
            out.push(String::new());
        } else {
            out.push(format!(" {}", clean_line(line)));
        }
    }
    if in_fence {
        out.push(" ```".to_owned());
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

fn clean_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut rest = line;
    while !rest.is_empty() {
        if let Some(url_len) = url_at(rest) {
            let (url, tail) = rest.split_at(url_len);
            out.push('<');
            out.push_str(url);
            out.push('>');
            rest = tail;
            continue;
        }
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        match c {
            '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        rest = chars.as_str();
    }
    out
}

/// The length of a bare URL at the start of `text`, if there is one.
fn url_at(text: &str) -> Option<usize> {
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        return None;
    }
    let mut end = text
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '`' | ')'))
        .unwrap_or(text.len());
    // Trailing punctuation belongs to the sentence, not the URL.
    while end > 0 && text[..end].ends_with(['.', ',', ';', ':', '!', '?', '\'']) {
        end -= 1;
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_wrapped() {
        assert_eq!(
            doc_lines("See https://atproto.com/specs/lexicon. Thanks"),
            vec![" See <https://atproto.com/specs/lexicon>. Thanks"]
        );
    }

    #[test]
    fn brackets_are_escaped() {
        assert_eq!(
            doc_lines("an [x] and <y> and a->b"),
            vec![r" an \[x\] and \<y\> and a-\>b"]
        );
    }

    #[test]
    fn fences_become_text() {
        assert_eq!(
            doc_lines("Example:\n```\nlet x = 1;\n```\n\n"),
            vec![" Example:", " ```text", " let x = 1;", " ```"]
        );
        assert_eq!(doc_lines("```\nopen"), vec![" ```text", " open", " ```"]);
    }

    #[test]
    fn blank_lines_kept_inside() {
        assert_eq!(doc_lines("a\n\nb"), vec![" a", "", " b"]);
    }
}
