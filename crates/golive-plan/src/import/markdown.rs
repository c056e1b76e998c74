//! The walk over pulldown-cmark events: Markdown → sections of paragraphs,
//! list items and code blocks.
//!
//! The importer needs a little more structure than a flat event stream
//! (which list item a code block hangs under, which heading a list belongs
//! to) and much less than a full tree. The walk is iterative and stores list
//! items in a flat arena with parent/child indices, so that neither building
//! nor dropping the result recurses per nesting level: a checklist nested
//! 500 deep or 10,000 nested blockquotes cannot overflow the stack.
//!
//! Exported pages (Confluence, Notion) are read as their authors wrote them:
//! status emoji at the start of a line (`⬜`, `✅`) are checkboxes, `<br>`
//! ends a line, and a document without Markdown headings (but a title)
//! takes its bold-only lines (`**H-1 — Readiness**`) as headings. The text of HTML
//! blocks (comments, `<aside>`) is kept as paragraphs, not dropped.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::mojibake::strip_decorations;
use super::text::collapse;

/// The document as the importer sees it.
#[derive(Debug, Default)]
pub(crate) struct Doc {
    /// The first heading, when it is a level-1 heading before any content.
    pub title: Option<Line>,
    /// Sections in document order; section 0 is the preamble (everything
    /// before the first heading other than the title).
    pub sections: Vec<Section>,
    /// All list items, in document order (parents before children).
    pub items: Vec<ListItem>,
    /// Number of task-list items (`- [ ]`, `- [x]`).
    pub task_items: usize,
    /// Lines of HTML blocks without any text, which the importer does not read.
    pub html_lines: Vec<usize>,
}

/// Text under one heading (up to the next heading or thematic break).
#[derive(Debug, Default)]
pub(crate) struct Section {
    /// The heading; `None` for the preamble and for text after a `---`.
    pub heading: Option<Line>,
    /// The enclosing section (by heading level).
    pub parent: Option<usize>,
    /// Content in order.
    pub blocks: Vec<Block>,
}

/// A block of a section.
#[derive(Debug)]
pub(crate) enum Block {
    /// A paragraph, one [`Line`] per source line.
    Para(Vec<Line>),
    /// A list: indices of its items in [`Doc::items`].
    List(Vec<usize>),
    /// A fenced or indented code block.
    Code(Code),
}

/// One line of inline text.
#[derive(Debug, Default, Clone)]
pub(crate) struct Line {
    /// The text: emphasis markers and decorative emoji removed, inline code
    /// kept in backticks, whitespace collapsed.
    pub text: String,
    /// The bold lead-in, when the line starts with bold text.
    pub lead: Option<String>,
    /// `**Label**: value` → `Label` (also `**Label:** value`).
    pub label: Option<String>,
    /// The text after the label's colon, or the whole text.
    pub value: String,
    /// The inline code spans, without backticks.
    pub codes: Vec<String>,
    /// 1-based source line.
    pub line: usize,
}

/// A code block.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    /// The first word of the info string (`bash`), empty if none.
    pub lang: String,
    /// The code.
    pub text: String,
    /// 1-based line of the fence.
    pub line: usize,
}

/// A list item.
#[derive(Debug, Default)]
pub(crate) struct ListItem {
    /// 1-based source line.
    pub line: usize,
    /// `Some(checked)` for task-list items.
    pub checkbox: Option<bool>,
    /// In a numbered list.
    pub ordered: bool,
    /// The item's first paragraph.
    pub text: Line,
    /// Later paragraphs.
    pub paras: Vec<Line>,
    /// Code blocks directly under the item.
    pub code: Vec<Code>,
    /// Nested items.
    pub children: Vec<usize>,
    /// The enclosing item.
    pub parent: Option<usize>,
}

/// Inline text being collected.
#[derive(Default)]
struct Buf {
    text: String,
    strong_depth: usize,
    lead_open: bool,
    lead: Option<String>,
    codes: Vec<String>,
    line: usize,
}

impl Buf {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        if self.lead_open
            && let Some(l) = self.lead.as_mut()
        {
            l.push_str(s);
        }
    }

    fn finish(self) -> Line {
        let text = collapse(&self.text);
        let lead = self.lead.map(|l| collapse(&l)).filter(|l| !l.is_empty());
        let (label, value) = split_label(&text, lead.as_deref());
        Line {
            text,
            lead,
            label,
            value,
            codes: self.codes,
            line: self.line,
        }
    }
}

/// `**Label**: value`, `**Label:** value`, `**LABEL: value**`, and a plain
/// short `Label: value` → (Label, value).
fn split_label(text: &str, lead: Option<&str>) -> (Option<String>, String) {
    let Some(lead) = lead else {
        if let Some((head, value)) = text.split_once(": ")
            && !head.is_empty()
            && head.len() <= 40
            && head.split_whitespace().count() <= 5
            && !head.contains(['`', '[', '('])
            && !head.contains("://")
        {
            return (Some(head.trim().to_string()), value.trim().to_string());
        }
        return (None, text.to_string());
    };
    let after = text.strip_prefix(lead).unwrap_or("");
    if let Some(v) = after.trim_start().strip_prefix(':') {
        return (Some(lead.to_string()), v.trim().to_string());
    }
    if let Some(l) = lead.strip_suffix(':') {
        return (Some(l.trim().to_string()), after.trim().to_string());
    }
    if let Some((l, v)) = lead.split_once(": ") {
        return (
            Some(l.trim().to_string()),
            collapse(&format!("{v} {after}")),
        );
    }
    (None, text.to_string())
}

/// Where collected inline text goes.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Heading(u8),
    Para,
    ItemText(usize),
    ItemPara(usize),
}

struct Walker {
    doc: Doc,
    line_starts: Vec<usize>,
    current: usize,
    /// Open sections by heading level: (level, section index).
    headings: Vec<(u8, usize)>,
    /// Open list items.
    item_stack: Vec<usize>,
    /// Open lists: whether numbered, and where its items go (`None`: a new
    /// top-level list block of the current section).
    lists: Vec<(bool, Option<usize>)>,
    target: Option<Target>,
    bufs: Vec<Buf>,
    code: Option<Code>,
    in_html: bool,
    /// Text of the HTML block being read, and its first line.
    html: (String, usize),
    /// The document has no Markdown heading but its title: bold-only lines
    /// are its headings.
    bold_headings: bool,
}

/// Reads Markdown (CommonMark with task lists and strikethrough).
pub(crate) fn walk(src: &str) -> Doc {
    let normalised = status_markers(src);
    let src = normalised.as_str();
    let opts = Options::ENABLE_TASKLISTS | Options::ENABLE_STRIKETHROUGH;
    // A page exported with its title as the only heading still has bold
    // lines for its sections.
    let levels: Vec<HeadingLevel> = Parser::new_ext(src, opts)
        .filter_map(|e| match e {
            Event::Start(Tag::Heading { level, .. }) => Some(level),
            _ => None,
        })
        .take(2)
        .collect();
    let bold_headings = matches!(levels.as_slice(), [] | [HeadingLevel::H1]);
    let mut line_starts = vec![0];
    line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
    let mut w = Walker {
        doc: Doc {
            sections: vec![Section::default()],
            ..Doc::default()
        },
        line_starts,
        current: 0,
        headings: Vec::new(),
        item_stack: Vec::new(),
        lists: Vec::new(),
        target: None,
        bufs: Vec::new(),
        code: None,
        in_html: false,
        html: (String::new(), 0),
        bold_headings,
    };
    for (event, range) in Parser::new_ext(src, opts).into_offset_iter() {
        let line = w.line_of(range.start);
        w.event(event, line);
    }
    w.flush();
    w.doc
}

impl Walker {
    fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn section(&mut self) -> &mut Section {
        let i = self.current.min(self.doc.sections.len().saturating_sub(1));
        &mut self.doc.sections[i]
    }

    /// Starts collecting inline text, unless text is already being collected.
    fn open(&mut self, line: usize) {
        if self.target.is_some() {
            return;
        }
        self.target = Some(match self.item_stack.last() {
            Some(&i)
                if self.doc.items[i].text.text.is_empty() && self.doc.items[i].paras.is_empty() =>
            {
                Target::ItemText(i)
            }
            Some(&i) => Target::ItemPara(i),
            None => Target::Para,
        });
        self.bufs.push(Buf {
            line,
            ..Buf::default()
        });
    }

    fn buf(&mut self, line: usize) -> &mut Buf {
        if self.target.is_none() {
            self.open(line);
        }
        if self.bufs.is_empty() {
            self.bufs.push(Buf::default());
        }
        let last = self.bufs.len() - 1;
        let b = &mut self.bufs[last];
        if b.line == 0 {
            b.line = line;
        }
        b
    }

    /// Ends the inline text being collected and stores it.
    fn flush(&mut self) {
        let Some(target) = self.target.take() else {
            return;
        };
        let bufs = std::mem::take(&mut self.bufs);
        let first_line = bufs.first().map(|b| b.line).unwrap_or(0);
        let lines: Vec<Line> = bufs
            .into_iter()
            .map(Buf::finish)
            .filter(|l| !l.text.is_empty() || !l.codes.is_empty())
            .collect();
        match target {
            Target::Heading(level) => {
                let mut heading = join(lines);
                if heading.line == 0 {
                    heading.line = first_line;
                }
                self.heading(level, heading);
            }
            Target::Para => {
                let mut lines = lines;
                if self.bold_headings
                    && let Some(first) = lines.first()
                    && is_bold_only(first)
                {
                    let heading = lines.remove(0);
                    let level = if self.doc.title.is_none()
                        && self.doc.sections.len() == 1
                        && self.doc.sections[0].blocks.is_empty()
                    {
                        1
                    } else {
                        2
                    };
                    self.heading(level, heading);
                }
                if !lines.is_empty() {
                    self.section().blocks.push(Block::Para(lines));
                }
            }
            Target::ItemText(i) => {
                if let Some(item) = self.doc.items.get_mut(i) {
                    item.text = join(lines);
                }
            }
            Target::ItemPara(i) => {
                if let Some(item) = self.doc.items.get_mut(i) {
                    item.paras.extend(lines);
                }
            }
        }
    }

    fn heading(&mut self, level: u8, heading: Line) {
        let is_title = level == 1
            && self.doc.title.is_none()
            && self.doc.sections.len() == 1
            && self.doc.sections[0]
                .blocks
                .iter()
                .all(|b| matches!(b, Block::Para(_)));
        if is_title {
            self.doc.title = Some(heading);
            self.current = 0;
            return;
        }
        while self.headings.last().is_some_and(|(l, _)| *l >= level) {
            self.headings.pop();
        }
        let parent = self.headings.last().map(|(_, i)| *i).or(Some(0));
        self.doc.sections.push(Section {
            heading: Some(heading),
            parent,
            blocks: Vec::new(),
        });
        self.current = self.doc.sections.len() - 1;
        self.headings.push((level, self.current));
    }

    fn event(&mut self, event: Event<'_>, line: usize) {
        if let Some(code) = self.code.as_mut() {
            match event {
                Event::Text(t) => code.text.push_str(&t),
                Event::End(TagEnd::CodeBlock) => self.end_code(),
                _ => {}
            }
            return;
        }
        if self.in_html {
            match event {
                Event::Html(h) | Event::Text(h) => self.html.0.push_str(&h),
                Event::End(TagEnd::HtmlBlock) => self.end_html(),
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag, line),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => {
                let t = strip_decorations(&t);
                self.buf(line).push(&t);
            }
            Event::Code(c) => {
                let b = self.buf(line);
                b.push(&format!("`{c}`"));
                b.codes.push(c.to_string());
            }
            // `<br>` in exported pages separates what were lines.
            Event::InlineHtml(h) if is_br(&h) => match self.target {
                Some(Target::Para) | Some(Target::ItemPara(_)) => self.bufs.push(Buf {
                    line,
                    ..Buf::default()
                }),
                Some(_) => self.buf(line).push(" "),
                None => {}
            },
            Event::InlineHtml(h) | Event::Html(h) => {
                if self.target.is_some() {
                    self.buf(line).push(&h);
                }
            }
            Event::InlineMath(m) | Event::DisplayMath(m) => self.buf(line).push(&m),
            Event::FootnoteReference(f) => self.buf(line).push(&format!("[^{f}]")),
            Event::SoftBreak | Event::HardBreak => match self.target {
                Some(Target::Para) | Some(Target::ItemPara(_)) => {
                    let lead_line = line + 1;
                    self.bufs.push(Buf {
                        line: lead_line,
                        ..Buf::default()
                    });
                }
                Some(_) => self.buf(line).push(" "),
                None => {}
            },
            // `- ______` is a list item whose content CommonMark reads as a
            // thematic break: it is a blank to fill in, not a section break.
            Event::Rule if !self.item_stack.is_empty() => self.buf(line).push("___"),
            Event::Rule => {
                self.flush();
                self.doc.sections.push(Section {
                    heading: None,
                    parent: Some(0),
                    blocks: Vec::new(),
                });
                self.current = self.doc.sections.len() - 1;
            }
            Event::TaskListMarker(checked) => {
                if let Some(&i) = self.item_stack.last()
                    && let Some(item) = self.doc.items.get_mut(i)
                    && item.checkbox.is_none()
                {
                    item.checkbox = Some(checked);
                    self.doc.task_items += 1;
                }
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>, line: usize) {
        match tag {
            Tag::Heading { level, .. } => {
                self.flush();
                let level = match level {
                    HeadingLevel::H1 => 1,
                    HeadingLevel::H2 => 2,
                    HeadingLevel::H3 => 3,
                    HeadingLevel::H4 => 4,
                    HeadingLevel::H5 => 5,
                    HeadingLevel::H6 => 6,
                };
                self.target = Some(Target::Heading(level));
                self.bufs.push(Buf {
                    line,
                    ..Buf::default()
                });
            }
            Tag::Paragraph => {
                // A tight list item's text arrives without a paragraph; a loose
                // one's first paragraph continues the item text already open.
                if !matches!(self.target, Some(Target::ItemText(_)))
                    || self.bufs.iter().any(|b| !b.text.trim().is_empty())
                {
                    self.flush();
                }
                self.open(line);
            }
            Tag::List(start) => {
                self.flush();
                let parent = self.item_stack.last().copied();
                if parent.is_none() {
                    self.section().blocks.push(Block::List(Vec::new()));
                }
                self.lists.push((start.is_some(), parent));
            }
            Tag::Item => {
                self.flush();
                let (ordered, parent) = self.lists.last().copied().unwrap_or((false, None));
                let idx = self.doc.items.len();
                self.doc.items.push(ListItem {
                    line,
                    ordered,
                    parent,
                    ..ListItem::default()
                });
                match parent {
                    Some(p) => {
                        if let Some(item) = self.doc.items.get_mut(p) {
                            item.children.push(idx);
                        }
                    }
                    None => {
                        if let Some(Block::List(items)) = self.section().blocks.last_mut() {
                            items.push(idx);
                        } else {
                            self.section().blocks.push(Block::List(vec![idx]));
                        }
                    }
                }
                self.item_stack.push(idx);
                self.target = Some(Target::ItemText(idx));
                self.bufs.push(Buf {
                    line,
                    ..Buf::default()
                });
            }
            Tag::CodeBlock(kind) => {
                self.flush();
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase(),
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some(Code {
                    lang,
                    text: String::new(),
                    line,
                });
            }
            Tag::HtmlBlock => {
                self.flush();
                self.html = (String::new(), line);
                self.in_html = true;
            }
            Tag::Strong => {
                let b = self.buf(line);
                if b.strong_depth == 0 && b.lead.is_none() && b.text.trim().is_empty() {
                    b.lead = Some(String::new());
                    b.lead_open = true;
                }
                b.strong_depth += 1;
            }
            Tag::BlockQuote(_)
            | Tag::FootnoteDefinition(_)
            | Tag::Table(_)
            | Tag::TableHead
            | Tag::TableRow
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_) => self.flush(),
            Tag::TableCell => {
                if self.target.is_some() {
                    self.buf(line).push(" | ");
                }
            }
            Tag::Emphasis
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Link { .. }
            | Tag::Image { .. } => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) | TagEnd::Paragraph => self.flush(),
            TagEnd::Item => {
                self.flush();
                self.item_stack.pop();
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
            }
            TagEnd::Strong => {
                if let Some(b) = self.bufs.last_mut() {
                    b.strong_depth = b.strong_depth.saturating_sub(1);
                    if b.strong_depth == 0 {
                        b.lead_open = false;
                    }
                }
            }
            TagEnd::BlockQuote(_)
            | TagEnd::FootnoteDefinition
            | TagEnd::Table
            | TagEnd::TableHead
            | TagEnd::TableRow
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::MetadataBlock(_) => self.flush(),
            _ => {}
        }
    }

    /// Ends an HTML block: its text (tags and comment markers removed) is
    /// kept as a paragraph, so that a note in `<!-- -->` or an `<aside>`
    /// reaches the plan; a block without text is only noted.
    fn end_html(&mut self) {
        self.in_html = false;
        let (html, first) = std::mem::take(&mut self.html);
        let lines: Vec<Line> = html_text(&html)
            .into_iter()
            .map(|(k, text)| {
                let text = collapse(&strip_decorations(&text));
                Line {
                    value: text.clone(),
                    text,
                    line: first + k,
                    ..Line::default()
                }
            })
            .filter(|l| !l.text.is_empty())
            .collect();
        if lines.is_empty() {
            self.doc.html_lines.push(first);
        } else {
            self.section().blocks.push(Block::Para(lines));
        }
    }

    fn end_code(&mut self) {
        let Some(code) = self.code.take() else {
            return;
        };
        match self.item_stack.last() {
            Some(&i) => {
                if let Some(item) = self.doc.items.get_mut(i) {
                    item.code.push(code);
                }
            }
            None => self.section().blocks.push(Block::Code(code)),
        }
    }
}

/// A line that is bold from start to end and no label (`**Scope**`, not
/// `**Owner:**`): a heading in a document exported without headings.
fn is_bold_only(l: &Line) -> bool {
    l.lead.as_deref() == Some(l.text.as_str())
        && !l.text.ends_with(':')
        && l.codes.is_empty()
        && l.text.chars().count() <= 120
}

fn is_br(h: &str) -> bool {
    let t = h.trim().to_ascii_lowercase();
    t == "<br>" || t == "<br/>" || t == "<br />"
}

/// The text lines of an HTML block, by line offset within it: tags and
/// comment markers removed.
fn html_text(html: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_tag = false;
    for (k, raw) in html.split('\n').enumerate() {
        let raw = raw.replace("<!--", " ").replace("-->", " ");
        let mut text = String::new();
        for c in raw.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        out.push((k, text));
    }
    out
}

/// Status emoji that pages exported from wikis use as checkboxes, with
/// whether they mean done.
const STATUS_MARKERS: [(char, bool); 9] = [
    ('⬜', false),
    ('☐', false),
    ('🔲', false),
    ('◻', false),
    ('🔄', false),
    ('⏳', false),
    ('✅', true),
    ('☑', true),
    ('✔', true),
];

/// A line (without its indent) that starts with a status emoji and some
/// text, optionally as a list item (`- ✅ done`): whether it means done, and
/// the text after it.
pub(crate) fn status_marker(t: &str) -> Option<(bool, &str)> {
    let rest = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .unwrap_or(t);
    let mut chars = rest.chars();
    let c = chars.next()?;
    let done = STATUS_MARKERS.iter().find(|(m, _)| *m == c)?.1;
    let text = chars.as_str().trim_start_matches('\u{fe0f}');
    (text.starts_with(char::is_whitespace) && !text.trim().is_empty()).then_some((done, text))
}

/// Rewrites a line starting with a status emoji (`⬜ Freeze deploys<br>`) as
/// the task-list item it stands for (`- [ ] Freeze deploys`), outside code
/// fences. Line count and line ends are kept, so line numbers still match
/// the source.
fn status_markers(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut fence: Option<String> = None;
    for line in src.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let end = &line[body.len()..];
        let t = body.trim_start();
        let marker: String = t.chars().take_while(|c| *c == '`' || *c == '~').collect();
        if marker.len() >= 3 {
            match &fence {
                Some(f) if marker.starts_with(f.as_str()) => fence = None,
                None => fence = Some(marker),
                Some(_) => {}
            }
            out.push_str(line);
            continue;
        }
        if fence.is_some() {
            out.push_str(line);
            continue;
        }
        let indent = &body[..body.len() - t.len()];
        match status_marker(t) {
            Some((done, text)) => {
                let text = text.trim();
                let text = ["<br>", "<br/>", "<br />", "<BR>"]
                    .iter()
                    .find_map(|b| text.strip_suffix(b))
                    .unwrap_or(text)
                    .trim_end();
                out.push_str(indent);
                out.push_str(if done { "- [x] " } else { "- [ ] " });
                out.push_str(text);
                out.push_str(end);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Lines of one logical text (a heading, an item's first paragraph) joined by spaces.
fn join(lines: Vec<Line>) -> Line {
    let mut it = lines.into_iter();
    let Some(mut first) = it.next() else {
        return Line::default();
    };
    for l in it {
        first.text = collapse(&format!("{} {}", first.text, l.text));
        first.value = collapse(&format!("{} {}", first.value, l.text));
        first.codes.extend(l.codes);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_items_and_code() {
        let doc = walk(
            "# Title\n\n**Env**: prod\n\n## A\n### a1\n- [ ] **Core** deployed\n  ```bash\n  up -d\n  ```\n  - [x] nested\n  - Backup: ___\n\n---\n\ntrailing\n",
        );
        assert_eq!(doc.title.as_ref().map(|t| t.text.as_str()), Some("Title"));
        assert_eq!(doc.task_items, 2);
        assert_eq!(doc.sections.len(), 4);
        let a1 = &doc.sections[2];
        assert_eq!(a1.parent, Some(1));
        assert_eq!(a1.heading.as_ref().map(|h| h.text.as_str()), Some("a1"));
        let Block::List(items) = &a1.blocks[0] else {
            panic!("list expected: {:?}", a1.blocks)
        };
        let item = &doc.items[items[0]];
        assert_eq!(item.text.text, "Core deployed");
        assert_eq!(item.text.lead.as_deref(), Some("Core"));
        assert_eq!(item.code[0].lang, "bash");
        assert_eq!(item.code[0].text, "up -d\n");
        assert_eq!(item.children.len(), 2);
        assert_eq!(doc.items[item.children[0]].checkbox, Some(true));
        assert_eq!(
            doc.items[item.children[1]].text.label.as_deref(),
            Some("Backup")
        );
        let Block::Para(lines) = &doc.sections[0].blocks[0] else {
            panic!("para expected")
        };
        assert_eq!(lines[0].label.as_deref(), Some("Env"));
        assert_eq!(lines[0].value, "prod");
        assert!(doc.sections[3].heading.is_none());
    }

    #[test]
    fn paragraph_lines_are_split() {
        let doc = walk("**Date**: ___  \n**Engineer**: ___\n**Env**: Production\n");
        let Block::Para(lines) = &doc.sections[0].blocks[0] else {
            panic!("para expected")
        };
        let labels: Vec<_> = lines
            .iter()
            .map(|l| l.label.clone().unwrap_or_default())
            .collect();
        assert_eq!(labels, ["Date", "Engineer", "Env"]);
        assert_eq!(lines.iter().map(|l| l.line).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn labels_in_their_variants() {
        assert_eq!(
            split_label("Label: value", Some("Label")),
            (Some("Label".into()), "value".into())
        );
        assert_eq!(
            split_label("Label: value", Some("Label:")),
            (Some("Label".into()), "value".into())
        );
        assert_eq!(
            split_label("STATUS: [ ] OK", Some("STATUS: [ ] OK")),
            (Some("STATUS".into()), "[ ] OK".into())
        );
        assert_eq!(
            split_label("Core deployed", Some("Core")),
            (None, "Core deployed".into())
        );
        assert_eq!(
            split_label("Backup file: ___", None),
            (Some("Backup file".into()), "___".into())
        );
        assert_eq!(
            split_label("See `a: b` here", None),
            (None, "See `a: b` here".into())
        );
    }

    #[test]
    fn exported_pages_status_emoji_br_and_bold_headings() {
        let doc = walk(
            "**Failover**\r\n\r\n**H-1 \u{2014} Readiness**\r\n\r\n\u{2b1c} Replica in sync (Owner:\u{a0}DBA)<br>\r\n\u{2705} Runbook reviewed<br>\r\n\r\n```\r\n\u{2b1c} not a task\r\n```\r\n\r\nSpace: SRE<br>Updated: today\r\n\r\n<!-- owner: @sre -->\r\n",
        );
        assert_eq!(
            doc.title.as_ref().map(|t| t.text.as_str()),
            Some("Failover")
        );
        assert_eq!(doc.sections.len(), 2);
        let s = &doc.sections[1];
        assert_eq!(s.heading.as_ref().map(|h| h.line), Some(3));
        let Block::List(items) = &s.blocks[0] else {
            panic!("list expected: {:?}", s.blocks)
        };
        assert_eq!(doc.task_items, 2);
        assert_eq!(
            doc.items[items[0]].text.text,
            "Replica in sync (Owner: DBA)"
        );
        assert_eq!(doc.items[items[1]].checkbox, Some(true));
        let Block::Code(c) = &s.blocks[1] else {
            panic!("code expected")
        };
        assert!(c.text.contains('\u{2b1c}'));
        let Block::Para(lines) = &s.blocks[2] else {
            panic!("para expected")
        };
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].label.as_deref(), Some("Updated"));
        let Block::Para(comment) = &s.blocks[3] else {
            panic!("comment kept as a paragraph: {:?}", s.blocks)
        };
        assert_eq!(comment[0].text, "owner: @sre");
        assert!(doc.html_lines.is_empty());
    }

    #[test]
    fn bold_lines_are_headings_under_an_exported_pages_only_title() {
        let doc = walk("# Page\n\n**Scope**\n\ntext\n\n**Steps**\n\n- [ ] a\n");
        assert_eq!(doc.title.as_ref().map(|t| t.text.as_str()), Some("Page"));
        let headings: Vec<&str> = doc
            .sections
            .iter()
            .filter_map(|s| s.heading.as_ref().map(|h| h.text.as_str()))
            .collect();
        assert_eq!(headings, ["Scope", "Steps"]);
    }

    #[test]
    fn bold_lines_are_not_headings_where_the_document_has_headings() {
        let doc = walk("# T\n\n## A\n\n**Rollback Procedure**\n\n- [ ] x\n");
        assert_eq!(doc.sections.len(), 2);
    }

    #[test]
    fn loose_items_keep_their_text() {
        let doc = walk("- [ ] first\n\n  more\n\n- [ ] second\n");
        assert_eq!(doc.items[0].text.text, "first");
        assert_eq!(doc.items[0].paras[0].text, "more");
        assert_eq!(doc.items[1].text.text, "second");
    }
}
