//! The audit report as a PDF, written in-process with pdf-writer and the standard Helvetica
//! font (no font files, no network): a title page with the period, filters, entry count and
//! chain head, then a table of entries, with page numbers.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use shared::audit::Entry;

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 48.0;
const LINE: f32 = 13.0;
const ROWS_PER_PAGE: usize = 52;

/// Text the standard fonts can show: printable ASCII, the rest replaced.
fn printable(text: &str, max: usize) -> Vec<u8> {
    let mut out: Vec<u8> = text
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c as u8 } else { b'?' })
        .collect();
    if out.len() > max {
        out.truncate(max.saturating_sub(3));
        out.extend_from_slice(b"...");
    }
    out
}

struct Writer {
    lines: Vec<(f32, f32, f32, Vec<u8>, bool)>,
}

impl Writer {
    fn new() -> Self {
        Self { lines: Vec::new() }
    }

    fn text(&mut self, x: f32, y: f32, size: f32, text: &str, bold: bool) {
        self.lines.push((x, y, size, printable(text, 120), bold));
    }

    fn content(&self) -> Vec<u8> {
        let mut c = Content::new();
        for (x, y, size, bytes, bold) in &self.lines {
            c.begin_text();
            c.set_font(Name(if *bold { b"F2" } else { b"F1" }), *size);
            c.next_line(*x, *y);
            c.show(Str(bytes));
            c.end_text();
        }
        c.finish().into_vec()
    }
}

/// Builds the report.
pub fn audit_report(manifest: &serde_json::Value, entries: &[Entry]) -> Vec<u8> {
    let chunks: Vec<&[Entry]> = entries.chunks(ROWS_PER_PAGE).collect();
    let total_pages = 1 + chunks.len().max(1);
    let mut pages = Vec::new();

    let mut title = Writer::new();
    let mut y = HEIGHT - 120.0;
    title.text(MARGIN, y, 22.0, "CertifyClouds audit report", true);
    y -= 40.0;
    let filters = &manifest["filters"];
    let field =
        |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_else(|| "any".into());
    for (label, value) in [
        ("Generated", field(&manifest["generatedAt"])),
        ("Period from", field(&filters["startDate"])),
        ("Period to", field(&filters["endDate"])),
        ("Event type", field(&filters["eventType"])),
        ("Actor", field(&filters["actor"])),
        ("Entries", manifest["entryCount"].to_string()),
        ("Chain head", field(&manifest["chainHead"])),
    ] {
        title.text(MARGIN, y, 11.0, label, true);
        title.text(MARGIN + 110.0, y, 11.0, &value, false);
        y -= 20.0;
    }
    y -= 10.0;
    title.text(
        MARGIN,
        y,
        9.0,
        "Each entry carries an HMAC over its content and the previous entry's",
        false,
    );
    title.text(
        MARGIN,
        y - LINE,
        9.0,
        "HMAC; GET /audit/verify proves the chain up to the head above.",
        false,
    );
    pages.push(title);

    let columns: [(&str, f32, usize); 5] = [
        ("Id", 0.0, 8),
        ("Time (UTC)", 40.0, 20),
        ("Actor", 150.0, 22),
        ("Event", 270.0, 28),
        ("Target", 400.0, 30),
    ];
    for chunk in chunks.iter().copied().chain(entries.is_empty().then_some(&[][..])) {
        let mut page = Writer::new();
        let mut y = HEIGHT - MARGIN;
        for (name, x, _) in columns {
            page.text(MARGIN + x, y, 9.0, name, true);
        }
        y -= LINE + 4.0;
        if chunk.is_empty() {
            page.text(MARGIN, y, 9.0, "No entries match the filters.", false);
        }
        for e in chunk {
            let at = e.at.format("%Y-%m-%d %H:%M:%S").to_string();
            let cells = [
                e.id.to_string(),
                at,
                e.actor.clone(),
                e.event_type.clone(),
                e.target.clone().unwrap_or_default(),
            ];
            for ((_, x, max), cell) in columns.iter().zip(cells) {
                let shown = String::from_utf8_lossy(&printable(&cell, *max)).into_owned();
                page.text(MARGIN + x, y, 8.0, &shown, false);
            }
            y -= LINE;
        }
        pages.push(page);
    }

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let page_ids: Vec<Ref> = (0..pages.len()).map(|i| Ref::new(10 + 2 * i as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(page_ids.len() as i32);
    pdf.type1_font(regular).base_font(Name(b"Helvetica"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold"));

    for (i, mut page) in pages.into_iter().enumerate() {
        page.text(
            WIDTH / 2.0 - 30.0,
            24.0,
            8.0,
            &format!("Page {} of {}", i + 1, total_pages),
            false,
        );
        let id = page_ids[i];
        let content_id = Ref::new(id.get() + 1);
        let mut p = pdf.page(id);
        p.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
        p.parent(tree);
        p.contents(content_id);
        let mut resources = p.resources();
        let mut fonts = resources.fonts();
        fonts.pair(Name(b"F1"), regular);
        fonts.pair(Name(b"F2"), bold);
        fonts.finish();
        resources.finish();
        p.finish();
        pdf.stream(content_id, &page.content());
    }
    pdf.finish()
}
