//! A self-contained HTML report: one file with text, tables and pictures
//! inline, no network, no other files.

use crate::canvas::xml_escape;
use crate::error::PlotError;
use crate::fsio;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where a report image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// A `.png` or `.svg` file, read when the report is rendered. SVG is
    /// inlined as it is, so only use SVG files you trust (such as this
    /// crate's own).
    File(PathBuf),
    /// PNG bytes.
    Png(Vec<u8>),
    /// SVG markup.
    Svg(String),
}

/// A picture with a caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The picture.
    pub source: ImageSource,
    /// Text under the picture (also its alternative text).
    pub caption: String,
}

/// A table with a header row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Rows of cells; short rows are padded with empty cells. Cells that read
    /// as numbers are right-aligned.
    pub rows: Vec<Vec<String>>,
    /// Text under the table; empty for none.
    pub caption: String,
}

impl Table {
    /// A table with these column headings and no rows.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            caption: String::new(),
        }
    }

    /// Adds a row.
    pub fn row<S: Into<String>>(mut self, cells: impl IntoIterator<Item = S>) -> Table {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the caption.
    pub fn caption(mut self, caption: impl Into<String>) -> Table {
        self.caption = caption.into();
        self
    }
}

/// One piece of a section.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Plain text (HTML is escaped; line breaks are kept).
    Paragraph(String),
    /// A table.
    Table(Table),
    /// A picture.
    Image(Image),
    /// Preformatted text in a monospace font (commands, configuration).
    Code(String),
}

/// A titled part of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Section heading.
    pub heading: String,
    /// Contents, in order.
    pub blocks: Vec<Block>,
}

impl Section {
    /// An empty section.
    pub fn new(heading: impl Into<String>) -> Section {
        Section {
            heading: heading.into(),
            blocks: Vec::new(),
        }
    }

    /// Adds a paragraph of plain text.
    pub fn paragraph(mut self, text: impl Into<String>) -> Section {
        self.blocks.push(Block::Paragraph(text.into()));
        self
    }

    /// Adds a table.
    pub fn table(mut self, table: Table) -> Section {
        self.blocks.push(Block::Table(table));
        self
    }

    /// Adds a `.png` or `.svg` file, embedded when the report is rendered.
    pub fn image_file(mut self, path: impl Into<PathBuf>, caption: impl Into<String>) -> Section {
        self.blocks.push(Block::Image(Image {
            source: ImageSource::File(path.into()),
            caption: caption.into(),
        }));
        self
    }

    /// Adds a PNG image from memory.
    pub fn png(mut self, bytes: Vec<u8>, caption: impl Into<String>) -> Section {
        self.blocks.push(Block::Image(Image {
            source: ImageSource::Png(bytes),
            caption: caption.into(),
        }));
        self
    }

    /// Adds an SVG image from memory.
    pub fn svg(mut self, markup: impl Into<String>, caption: impl Into<String>) -> Section {
        self.blocks.push(Block::Image(Image {
            source: ImageSource::Svg(markup.into()),
            caption: caption.into(),
        }));
        self
    }

    /// Adds preformatted text.
    pub fn code(mut self, text: impl Into<String>) -> Section {
        self.blocks.push(Block::Code(text.into()));
        self
    }
}

/// A report: a title, optional introduction, and sections.
///
/// The written file embeds PNG images as base64 `data:` URIs and SVG images as
/// inline markup, and uses no external resource (no scripts, web fonts or
/// style sheets), so it can be mailed, archived and opened offline.
///
/// ```
/// use downhill_plot::{Report, Section, Table};
/// let html = Report::new("Optimiser comparison")
///     .paragraph("Fashion-MNIST, logistic regression, 10 epochs.")
///     .section(
///         Section::new("Results").table(
///             Table::new(["optimiser", "test accuracy"])
///                 .row(["adam", "0.846"])
///                 .row(["sgd", "0.838"]),
///         ),
///     )
///     .render()?;
/// assert!(html.contains("<td class=\"num\">0.846</td>"));
/// # Ok::<(), downhill_plot::PlotError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// Page title and top heading.
    pub title: String,
    /// Blocks before the first section.
    pub intro: Vec<Block>,
    /// The sections, in order; with two or more, a table of contents is added.
    pub sections: Vec<Section>,
}

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef0f3; color: #1f2328;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Helvetica Neue", Arial, sans-serif;
  font-size: 16px; line-height: 1.55; }
main { max-width: 1000px; margin: 0 auto; padding: 28px 40px 56px; background: #fff; min-height: 100vh;
  box-shadow: 0 0 0 1px #e1e4e8; }
h1 { font-size: 1.9rem; line-height: 1.25; margin: 0.2em 0 0.7em; }
h2 { font-size: 1.35rem; margin: 2em 0 0.6em; padding-bottom: 0.25em; border-bottom: 1px solid #e1e4e8; }
p { margin: 0.6em 0; }
nav.toc { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 6px; padding: 10px 18px; margin: 1em 0; }
nav.toc ol { margin: 0.3em 0; padding-left: 1.4em; }
nav.toc a { color: #0b5cad; text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
.table-wrap { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.95rem; }
caption { caption-side: bottom; text-align: left; color: #57606a; font-size: 0.9rem; padding-top: 6px; }
th, td { padding: 5px 12px; border-bottom: 1px solid #e1e4e8; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; border-bottom: 2px solid #d0d7de; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
figure { margin: 1.4em 0; }
figure img, figure svg { display: block; max-width: 100%; height: auto; border: 1px solid #e1e4e8; border-radius: 4px; }
figcaption { color: #57606a; font-size: 0.9rem; margin-top: 6px; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 6px; padding: 10px 14px; overflow-x: auto;
  font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.88rem; }
@media print { body { background: #fff; } main { box-shadow: none; } figure { break-inside: avoid; } }
"#;

impl Report {
    /// An empty report.
    pub fn new(title: impl Into<String>) -> Report {
        Report {
            title: title.into(),
            intro: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// Adds an introductory paragraph before the sections.
    pub fn paragraph(mut self, text: impl Into<String>) -> Report {
        self.intro.push(Block::Paragraph(text.into()));
        self
    }

    /// Adds a section.
    pub fn section(mut self, section: Section) -> Report {
        self.sections.push(section);
        self
    }

    /// Renders and writes the report to `path` atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), PlotError> {
        let html = self.render()?;
        fsio::write_atomic(path.as_ref(), html.as_bytes())
    }

    /// The report as one HTML document; image files are read now.
    pub fn render(&self) -> Result<String, PlotError> {
        let mut out = String::new();
        let title = xml_escape(&self.title);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"downhill-plot\">\n<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n"
        );
        for b in &self.intro {
            render_block(&mut out, b)?;
        }
        if self.sections.len() >= 2 {
            out.push_str("<nav class=\"toc\"><strong>Contents</strong>\n<ol>\n");
            for (i, s) in self.sections.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "<li><a href=\"#section-{}\">{}</a></li>",
                    i + 1,
                    xml_escape(&s.heading)
                );
            }
            out.push_str("</ol>\n</nav>\n");
        }
        for (i, s) in self.sections.iter().enumerate() {
            let _ = writeln!(
                out,
                "<section id=\"section-{}\">\n<h2>{}</h2>",
                i + 1,
                xml_escape(&s.heading)
            );
            for b in &s.blocks {
                render_block(&mut out, b)?;
            }
            out.push_str("</section>\n");
        }
        out.push_str("</main>\n</body>\n</html>\n");
        Ok(out)
    }
}

/// Whether a table cell reads as a number (optionally signed, with a unit
/// such as % or ×), for right alignment.
fn numeric(cell: &str) -> bool {
    let t = cell.trim();
    let t = t.trim_end_matches(['%', '×', 'x', 's']).trim();
    let t = t.replace('−', "-").replace(['_', ','], "");
    !t.is_empty() && t.parse::<f64>().is_ok()
}

fn text_html(s: &str) -> String {
    xml_escape(s).replace('\n', "<br>\n")
}

fn render_block(out: &mut String, b: &Block) -> Result<(), PlotError> {
    match b {
        Block::Paragraph(t) => {
            let _ = writeln!(out, "<p>{}</p>", text_html(t));
        }
        Block::Code(t) => {
            let _ = writeln!(out, "<pre>{}</pre>", xml_escape(t));
        }
        Block::Table(t) => {
            let cols = t
                .header
                .len()
                .max(t.rows.iter().map(Vec::len).max().unwrap_or(0));
            out.push_str("<div class=\"table-wrap\"><table>\n");
            if !t.caption.trim().is_empty() {
                let _ = writeln!(out, "<caption>{}</caption>", xml_escape(&t.caption));
            }
            if !t.header.is_empty() {
                out.push_str("<thead><tr>");
                for k in 0..cols {
                    let h = t.header.get(k).map_or("", String::as_str);
                    let _ = write!(out, "<th>{}</th>", xml_escape(h));
                }
                out.push_str("</tr></thead>\n");
            }
            out.push_str("<tbody>\n");
            for row in &t.rows {
                out.push_str("<tr>");
                for k in 0..cols {
                    let c = row.get(k).map_or("", String::as_str);
                    if numeric(c) {
                        let _ = write!(out, "<td class=\"num\">{}</td>", xml_escape(c));
                    } else {
                        let _ = write!(out, "<td>{}</td>", xml_escape(c));
                    }
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody></table></div>\n");
        }
        Block::Image(img) => {
            out.push_str("<figure>\n");
            match &img.source {
                ImageSource::Png(bytes) => embed_png(out, bytes, &img.caption, None)?,
                ImageSource::Svg(markup) => embed_svg(out, markup, None)?,
                ImageSource::File(path) => {
                    let bytes = std::fs::read(path).map_err(|source| PlotError::Read {
                        path: path.clone(),
                        source,
                    })?;
                    if bytes.starts_with(PNG_MAGIC) {
                        embed_png(out, &bytes, &img.caption, Some(path))?;
                    } else {
                        let text = String::from_utf8(bytes)
                            .map_err(|_| PlotError::UnsupportedImage { path: path.clone() })?;
                        embed_svg(out, &text, Some(path))?;
                    }
                }
            }
            if !img.caption.trim().is_empty() {
                let _ = writeln!(out, "<figcaption>{}</figcaption>", text_html(&img.caption));
            }
            out.push_str("</figure>\n");
        }
    }
    Ok(())
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

fn unsupported(path: Option<&PathBuf>) -> PlotError {
    PlotError::UnsupportedImage {
        path: path
            .cloned()
            .unwrap_or_else(|| PathBuf::from("<image given in memory>")),
    }
}

fn embed_png(
    out: &mut String,
    bytes: &[u8],
    alt: &str,
    path: Option<&PathBuf>,
) -> Result<(), PlotError> {
    use base64::Engine as _;
    if !bytes.starts_with(PNG_MAGIC) || bytes.len() < 24 {
        return Err(unsupported(path));
    }
    // Width and height from the IHDR chunk, so the page lays out before decoding.
    let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    let _ = writeln!(
        out,
        "<img width=\"{w}\" height=\"{h}\" alt=\"{}\" src=\"data:image/png;base64,{}\">",
        xml_escape(alt),
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    Ok(())
}

/// Inlines SVG markup: drops the XML declaration, doctype and comments
/// before the root, and the namespace declarations HTML does not need.
fn embed_svg(out: &mut String, markup: &str, path: Option<&PathBuf>) -> Result<(), PlotError> {
    let start = markup.find("<svg").ok_or_else(|| unsupported(path))?;
    let body = markup[start..].trim_end();
    if !body.ends_with("</svg>") && !body.ends_with("/>") {
        return Err(unsupported(path));
    }
    let body = body
        .replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
        .replacen(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "", 1);
    out.push_str(&body);
    out.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_recognised() {
        for n in [
            "1", "-2.5", "−3", "84.6%", "1e-3", " 12 ", "1,234", "3.2 s", "1.5×",
        ] {
            assert!(numeric(n), "{n}");
        }
        for t in ["adam", "", "n/a", "sgd(lr=0.1)"] {
            assert!(!numeric(t), "{t}");
        }
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let html = Report::new("<t>")
            .paragraph("a & b\nc")
            .section(
                Section::new("<h>")
                    .table(Table::new(["<x>"]).row(["<y>", "2"]).caption("<c>"))
                    .code("<script>"),
            )
            .render()
            .unwrap();
        assert!(!html.contains("<t>") && !html.contains("<h>") && !html.contains("<x>"));
        assert!(!html.contains("<y>") && !html.contains("<c>") && !html.contains("<script>"));
        assert!(html.contains("a &amp; b<br>\nc"));
        // The short header row is padded to the widest row.
        assert!(html.contains("<th>&lt;x&gt;</th><th></th>"));
    }

    #[test]
    fn bad_images_are_errors_not_panics() {
        let r = Report::new("r").section(Section::new("s").png(vec![1, 2, 3], "x"));
        assert!(matches!(
            r.render(),
            Err(PlotError::UnsupportedImage { .. })
        ));
        let r = Report::new("r").section(Section::new("s").svg("<html></html>", "x"));
        assert!(matches!(
            r.render(),
            Err(PlotError::UnsupportedImage { .. })
        ));
        let r = Report::new("r").section(Section::new("s").image_file("/no/such/file.png", "x"));
        let e = r.render().unwrap_err();
        assert!(e.to_string().contains("/no/such/file.png"), "{e}");
    }
}
