//! A small HTML writer that escapes by construction: markup can only come from `&'static str`
//! literals in this program, and every other string goes through [`escape`]. Pages and SVG
//! charts are written with it, so no text from the history (script names, arguments, log
//! lines, metric names) can become markup.

use std::fmt::Write;

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attribute values.
pub fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A document being written.
#[derive(Default)]
pub struct Html {
    out: String,
}

impl Html {
    pub fn new() -> Html {
        Html {
            out: String::with_capacity(16 * 1024),
        }
    }

    /// Markup written in this program (a literal).
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// Text, escaped.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape(text, &mut self.out);
        self
    }

    /// A number or other value whose `Display` is written escaped.
    pub fn display(&mut self, value: impl std::fmt::Display) -> &mut Self {
        let text = value.to_string();
        self.text(&text)
    }

    /// `<tag a="v" ...>` with escaped attribute values. `None` values are left out.
    pub fn open(&mut self, tag: &'static str, attributes: &[(&'static str, Option<&str>)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attributes {
            if let Some(value) = value {
                self.out.push(' ');
                self.out.push_str(name);
                self.out.push_str("=\"");
                escape(value, &mut self.out);
                self.out.push('"');
            }
        }
        self.out.push('>');
        self
    }

    /// `<tag ...>text</tag>`.
    pub fn element(&mut self, tag: &'static str, attributes: &[(&'static str, Option<&str>)], text: &str) -> &mut Self {
        self.open(tag, attributes).text(text).close(tag)
    }

    pub fn close(&mut self, tag: &'static str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// Appends another document (itself written with this type, so already escaped).
    pub fn append(&mut self, other: Html) -> &mut Self {
        self.out.push_str(&other.out);
        self
    }

    /// `<tag class="class" a="1.5" ...>` with numeric attributes (SVG coordinates): a
    /// number's `Display` has nothing to escape.
    pub fn open_numeric(
        &mut self,
        tag: &'static str,
        class: &'static str,
        attributes: &[(&'static str, f64)],
    ) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        if !class.is_empty() {
            self.out.push_str(" class=\"");
            self.out.push_str(class);
            self.out.push('"');
        }
        for (name, value) in attributes {
            let _ = write!(self.out, " {name}=\"{value}\"");
        }
        self.out.push('>');
        self
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let mut html = Html::new();
        html.open("a", &[("href", Some("/runs/x\"><script>")), ("title", None)])
            .text("<b>&'\"</b>")
            .close("a");
        assert_eq!(
            html.into_string(),
            "<a href=\"/runs/x&quot;&gt;&lt;script&gt;\">&lt;b&gt;&amp;&#39;&quot;&lt;/b&gt;</a>"
        );
    }

    #[test]
    fn numeric_tags_and_displayed_values() {
        let mut html = Html::new();
        html.open_numeric("line", "grid", &[("x1", 1.5), ("y1", -2.0)])
            .close("line");
        html.display("<x>");
        assert_eq!(
            html.into_string(),
            "<line class=\"grid\" x1=\"1.5\" y1=\"-2\"></line>&lt;x&gt;"
        );
    }
}
