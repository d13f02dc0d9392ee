//! The HTML page of a grid pointing game: settings, one row of metrics per method, and
//! mosaics with each cell's class map.

use std::fmt::Write;

use crate::grid::GridSummary;
use crate::report::html::{GalleryItem, STYLE, escape, gallery, key_value_table, section};

/// Everything on the grid report page.
#[derive(Debug, Clone, PartialEq)]
pub struct GridReport<'a> {
    /// Page title and heading.
    pub title: &'a str,
    /// Configuration shown as a key/value table (see [`crate::config_table`]).
    pub config: &'a [(String, String)],
    /// Each method's name and summary, one table row each.
    pub methods: &'a [(String, GridSummary)],
    /// Pictures of mosaics with a cell's class map (one gallery item per map; its `iou` is
    /// the cell's GT-known IoU).
    pub gallery: &'a [GalleryItem],
}

impl GridReport<'_> {
    /// The page: a single HTML5 document with no external resources.
    pub fn to_html(&self) -> String {
        let title = escape(self.title);
        let mut page = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
        );
        page.push_str(&section("Configuration", &key_value_table(self.config)));
        page.push_str(&section("Grid pointing game", &methods_table(self.methods)));
        if !self.gallery.is_empty() {
            page.push_str(&section("Mosaics", &gallery(self.gallery)));
        }
        page.push_str("</body>\n</html>\n");
        page
    }
}

/// One row per method: mass share, peak in cell, GT-known localization, mean IoU, chance.
fn methods_table(methods: &[(String, GridSummary)]) -> String {
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    let mut table = String::from(
        "<table>\n<tr><th>method</th><th>n</th><th>mosaics</th><th>cells</th><th>failed</th>\
         <th>mass in cell</th><th>peak in cell</th><th>GT-known loc</th><th>mean IoU</th>\
         <th>chance</th></tr>\n",
    );
    for (name, s) in methods {
        let _ = writeln!(
            table,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td></tr>",
            escape(name),
            s.n,
            s.mosaics,
            s.cells,
            s.failed,
            pct(s.mass_share),
            pct(s.peak_in_cell),
            pct(s.gt_known_loc),
            s.mean_iou,
            pct(s.chance)
        );
    }
    table.push_str("</table>");
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{CellScore, GridSummary};

    #[test]
    fn the_page_lists_every_method_with_its_metrics() {
        let score = |mass: f32, peak: bool, iou: f32| CellScore {
            mosaic: 0,
            cell: 0,
            class: 1,
            mass_share: mass,
            peak_in_cell: peak,
            iou,
            error: None,
        };
        let summary = GridSummary::from_scores(2, &[score(0.5, true, 0.6), score(0.3, false, 0.2)]);
        let methods = vec![("grad<cam>".to_string(), summary)];
        let config = vec![("n".to_string(), "2".to_string())];
        let page = GridReport {
            title: "grid",
            config: &config,
            methods: &methods,
            gallery: &[],
        }
        .to_html();
        assert!(page.contains("grad&lt;cam&gt;"));
        assert!(page.contains(
            "<td class=\"num\">40.0%</td><td class=\"num\">50.0%</td><td class=\"num\">50.0%</td>"
        ));
        assert!(page.contains("25.0%"), "chance for 2 x 2");
        assert!(!page.contains("Mosaics"));
    }
}
