//! A small XML writer: elements and escaped text, nothing else. SAF-T needs no attributes
//! beyond the root's namespace, no mixed content and no comments, so thirty lines beat a
//! dependency.

/// Writes an indented XML document element by element.
pub struct Writer {
    out: String,
    open: Vec<&'static str>,
}

impl Writer {
    /// A document with its declaration, no element yet.
    #[must_use]
    pub fn new() -> Writer {
        Writer {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            open: Vec::new(),
        }
    }

    /// Opens `tag` with a default namespace (the root element).
    pub fn root(&mut self, tag: &'static str, namespace: &str) {
        self.indent();
        self.out
            .push_str(&format!("<{tag} xmlns=\"{}\">\n", escape(namespace)));
        self.open.push(tag);
    }

    /// Opens `tag`.
    pub fn start(&mut self, tag: &'static str) {
        self.indent();
        self.out.push_str(&format!("<{tag}>\n"));
        self.open.push(tag);
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) {
        if let Some(tag) = self.open.pop() {
            self.indent();
            self.out.push_str(&format!("</{tag}>\n"));
        }
    }

    /// `<tag>text</tag>`, escaped.
    pub fn leaf(&mut self, tag: &'static str, text: &str) {
        self.indent();
        self.out
            .push_str(&format!("<{tag}>{}</{tag}>\n", escape(text)));
    }

    /// `<tag>text</tag>` with `text` cut to `max` characters: the schema bounds every text
    /// field (18, 35, 70 or 256 characters), and a shop's name or line text may be longer.
    pub fn leaf_max(&mut self, tag: &'static str, text: &str, max: usize) {
        let cut: String = text.chars().take(max).collect();
        self.leaf(tag, cut.trim_end());
    }

    /// The document, with every element closed.
    #[must_use]
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
    }
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

/// Escapes markup characters and drops characters XML 1.0 cannot carry at all (control
/// characters other than tab, newline and carriage return; U+FFFE and U+FFFF).
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_unrepresentable_characters_dropped() {
        assert_eq!(
            escape("Kari & Ola <\"AS\"> 'x'\u{1}\u{FFFE}æøå"),
            "Kari &amp; Ola &lt;&quot;AS&quot;&gt; &apos;x&apos;æøå"
        );
    }

    #[test]
    fn elements_nest_and_long_text_is_cut_by_characters() {
        let mut w = Writer::new();
        w.root("A", "urn:x");
        w.start("B");
        w.leaf_max("C", "ææææ", 2);
        let doc = w.finish();
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A xmlns=\"urn:x\">\n  <B>\n    <C>ææ</C>\n  </B>\n</A>\n"
        );
    }
}
