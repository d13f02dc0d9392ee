//! The self-contained HTML report page.

use std::fmt::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Result, io_error};
use crate::metrics::{ImageRecord, Summary};
use crate::report::svg::histogram_svg;

/// One gallery image: an overlay PNG rendered by the caller, and its caption.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryItem {
    /// The image's id.
    pub id: String,
    /// Ground-truth class index.
    pub class: usize,
    /// Human-readable class name, if known.
    pub label: Option<String>,
    /// GT-known IoU.
    pub iou: f32,
    /// PNG bytes, embedded as a base64 data URI.
    pub png: Vec<u8>,
}

/// Everything on the report page.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<'a> {
    /// Page title and heading.
    pub title: &'a str,
    /// Configuration shown as a key/value table (see [`crate::config_table`]).
    pub config: &'a [(String, String)],
    /// The metrics.
    pub summary: &'a Summary,
    /// Gallery of the best images (highest IoU first).
    pub best: &'a [GalleryItem],
    /// Gallery of the worst images (lowest IoU first).
    pub worst: &'a [GalleryItem],
}

pub(crate) const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}td.num{text-align:right}\
.gallery{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;width:240px}\
figure img{max-width:240px;height:auto}figcaption{font-size:.85em;word-break:break-all}";

impl Report<'_> {
    /// The page: a single HTML5 document with no external resources.
    pub fn to_html(&self) -> String {
        let title = escape(self.title);
        let mut page = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
        );
        page.push_str(&section("Configuration", &key_value_table(self.config)));
        page.push_str(&section("Metrics", &metrics_table(self.summary)));
        page.push_str(&section(
            "GT-known IoU histogram",
            &histogram_svg(&self.summary.iou_histogram),
        ));
        page.push_str(&section(
            &format!("Best {}", self.best.len()),
            &gallery(self.best),
        ));
        page.push_str(&section(
            &format!("Worst {}", self.worst.len()),
            &gallery(self.worst),
        ));
        page.push_str("</body>\n</html>\n");
        page
    }

    /// Writes [`Report::to_html`] to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_html()).map_err(io_error(path))
    }
}

/// The `n` best (highest GT-known IoU first) and `n` worst (lowest first)
/// evaluated images, ties broken by index; failed images are left out.
pub fn best_and_worst(records: &[ImageRecord], n: usize) -> (Vec<&ImageRecord>, Vec<&ImageRecord>) {
    let mut ok: Vec<&ImageRecord> = records.iter().filter(|r| !r.is_failed()).collect();
    ok.sort_by(|a, b| {
        a.gt_known_iou
            .total_cmp(&b.gt_known_iou)
            .then(a.index.cmp(&b.index))
    });
    let worst = ok.iter().take(n).copied().collect();
    ok.sort_by(|a, b| {
        b.gt_known_iou
            .total_cmp(&a.gt_known_iou)
            .then(a.index.cmp(&b.index))
    });
    ok.truncate(n);
    (ok, worst)
}

/// Encodes an RGB image as PNG bytes (for [`GalleryItem::png`]).
pub fn encode_png(image: &image::RgbImage) -> Result<Vec<u8>> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

/// Flattens a JSON object into sorted `dotted.key = value` rows.
pub fn config_table(config: &serde_json::Value) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    flatten("", config, &mut rows);
    rows
}

fn flatten(prefix: &str, value: &serde_json::Value, rows: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, v, rows);
            }
        }
        serde_json::Value::String(s) => rows.push((prefix.to_string(), s.clone())),
        serde_json::Value::Number(n) => rows.push((prefix.to_string(), number_text(n))),
        other => rows.push((prefix.to_string(), other.to_string())),
    }
}

/// A number as written; a float that is exactly an `f32` (as `f32` fields
/// become in a JSON value) is written in `f32`'s shortest form, `0.2` and
/// not `0.20000000298023224`.
fn number_text(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(v) if n.is_f64() && f64::from(v as f32) == v => (v as f32).to_string(),
        _ => n.to_string(),
    }
}

pub(crate) fn section(heading: &str, body: &str) -> String {
    format!(
        "<section>\n<h2>{}</h2>\n{body}\n</section>\n",
        escape(heading)
    )
}

pub(crate) fn key_value_table(rows: &[(String, String)]) -> String {
    let mut table = String::from("<table>\n");
    for (key, value) in rows {
        let _ = writeln!(
            table,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(key),
            escape(value)
        );
    }
    table.push_str("</table>");
    table
}

/// Rows of the metrics table: name, value, what it follows.
fn metric_rows(s: &Summary) -> Vec<[String; 3]> {
    let pct = |v: f64| format!("{:.2}%", v * 100.0);
    let row = |name: &str, value: String, note: &str| [name.to_string(), value, note.to_string()];
    let mut rows = vec![
        row("Images", s.images.to_string(), ""),
        row(
            "Failed images",
            s.failed.to_string(),
            "count as wrong everywhere",
        ),
        row("Top-1 classification", pct(s.top1_cls), ""),
        row("Top-5 classification", pct(s.top5_cls), ""),
        row(
            "Top-1 localization",
            pct(s.top1_loc),
            "ILSVRC: right class and IoU ≥ 0.5",
        ),
        row(
            "Top-5 localization error",
            pct(s.top5_loc_error),
            "ILSVRC 2012 challenge rule",
        ),
        row(
            "GT-known localization",
            pct(s.gt_known_loc),
            "CAM (Zhou et al. 2016), wsolevaluation",
        ),
        row(
            "MaxBoxAccV2",
            pct(s.maxbox_acc_v2),
            "Choe et al., CVPR 2020: mean over δ ∈ {0.3, 0.5, 0.7}",
        ),
    ];
    for m in &s.maxbox {
        let name = format!("MaxBoxAcc @ δ = {:.1}", m.iou_threshold);
        rows.push(row(
            &name,
            pct(m.accuracy),
            &format!("best map threshold {:.2}", m.best_threshold),
        ));
    }
    rows.push(row("Mean GT-known IoU", format!("{:.4}", s.mean_iou), ""));
    rows.push(row(
        "Pointing game",
        pct(s.pointing_game),
        "Zhang et al., ECCV 2016 (15 px tolerance by default)",
    ));
    rows
}

fn metrics_table(summary: &Summary) -> String {
    let mut table = String::from("<table>\n<tr><th>metric</th><th>value</th><th>notes</th></tr>\n");
    for [name, value, note] in metric_rows(summary) {
        let (name, note) = (escape(&name), escape(&note));
        let _ = writeln!(
            table,
            "<tr><td>{name}</td><td class=\"num\">{value}</td><td>{note}</td></tr>"
        );
    }
    table.push_str("</table>");
    table
}

pub(crate) fn gallery(items: &[GalleryItem]) -> String {
    let mut html = String::from("<div class=\"gallery\">\n");
    for item in items {
        let label = item
            .label
            .as_deref()
            .map(|l| format!(" {}", escape(l)))
            .unwrap_or_default();
        let id = escape(&item.id);
        let _ = writeln!(
            html,
            "<figure><img src=\"data:image/png;base64,{}\" alt=\"{id}\"><figcaption>{id}<br>class {}{label}<br>IoU {:.3}</figcaption></figure>",
            STANDARD.encode(&item.png),
            item.class,
            item.iou
        );
    }
    html.push_str("</div>");
    html
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Data URIs hold standard base64 (RFC 4648 alphabet, `=` padding).
    #[test]
    fn gallery_embeds_standard_padded_base64() {
        let cases = [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
            (&[0xff, 0xfe, 0xfd], "//79"),
        ];
        for (png, coded) in cases {
            let item = GalleryItem {
                id: "x".into(),
                class: 1,
                label: None,
                iou: 0.5,
                png: png.to_vec(),
            };
            let want = format!("src=\"data:image/png;base64,{coded}\" alt");
            assert!(gallery(&[item]).contains(&want), "{png:?}");
        }
    }
}
