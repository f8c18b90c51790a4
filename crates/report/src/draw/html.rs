//! `REPORT.html`: a results folder as one self-contained page (no network):
//! the machine and any warning about a busy machine first, then per
//! scenario its settings, its tables (sortable: click a column's header),
//! its summary and its charts inline.

use std::fmt::Write as _;
use std::path::Path;

use comfy_table::Table;
use rates_measure::{Export, Machine};

use super::{chart, table};

/// Text made safe inside HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table as HTML, from the same rows the terminal and Markdown show.
fn html_table(t: &Table) -> String {
    let mut out = String::from("<table class=\"sortable\">\n<thead><tr>");
    if let Some(header) = t.header() {
        for cell in header.cell_iter() {
            let _ = write!(out, "<th>{}</th>", esc(&cell.content()));
        }
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in t.row_iter() {
        out.push_str("<tr>");
        for cell in row.cell_iter() {
            let _ = write!(out, "<td>{}</td>", esc(&cell.content()));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;\
color:#222}table{border-collapse:collapse;margin:.5em 0 1em;font-size:14px}th,td{padding:3px 10px;\
text-align:right;border-bottom:1px solid #ddd}th:first-child,td:first-child{text-align:left}\
th{cursor:pointer;background:#f4f4f4;user-select:none}th:hover{background:#e8e8e8}\
.warning{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em}.settings,.machine{color:#555}\
pre{background:#f7f7f7;padding:.6em;overflow-x:auto}figure{margin:1em 0}svg{max-width:100%;\
height:auto}nav a{margin-right:1em}";

/// Sorts a table by the clicked column: numbers by value (with their unit:
/// µs, ms, s, KiB, MiB, GiB), text alphabetically; a second click reverses.
const SCRIPT: &str = r#"(function () {
  var units = {"µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1, "KiB": 1024, "MiB": 1048576,
               "GiB": 1073741824, "x": 1};
  function value(text) {
    var m = text.replace(/,/g, "").match(/^\s*(-?[0-9.]+)\s*([a-zA-Zµ]*)/);
    if (!m) return null;
    return parseFloat(m[1]) * (units[m[2]] || 1);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, col) {
      th.title = "sort by " + th.textContent;
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var up = th.dataset.order !== "up";
        rows.sort(function (a, b) {
          var x = a.cells[col] ? a.cells[col].textContent : "";
          var y = b.cells[col] ? b.cells[col].textContent : "";
          var vx = value(x), vy = value(y);
          var c = (vx !== null && vy !== null) ? vx - vy
                : (vx !== null ? -1 : (vy !== null ? 1 : x.localeCompare(y)));
          return up ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
        th.dataset.order = up ? "up" : "down";
      });
    });
  });
})();"#;

/// The page for `exports`, its charts read from `dir` (where they were
/// drawn) and inlined.
pub(crate) fn page(dir: &Path, machine: &Machine, exports: &[Export]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>rates compare: results</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>rates compare: results</h1>\n"
    );
    if let Some(why) = &machine.incomplete {
        let _ = writeln!(
            h,
            "<p class=\"warning\"><b>Incomplete</b>: {}.</p>",
            esc(why)
        );
    }
    for e in exports {
        if let Some(w) = table::busy_warning(e) {
            let _ = writeln!(
                h,
                "<p class=\"warning\"><b>{}</b>: {}</p>",
                esc(&e.scenario.name),
                esc(w)
            );
        }
    }
    let _ = writeln!(
        h,
        "<p class=\"machine\">{} Command: <code>{}</code></p>",
        esc(&super::machine::taken(machine)),
        esc(&machine.command)
    );
    h.push_str("<nav>");
    for e in exports {
        let n = esc(&e.scenario.name);
        let _ = write!(h, "<a href=\"#{n}\">{n}</a>");
    }
    h.push_str("</nav>\n");
    for e in exports {
        let name = &e.scenario.name;
        let _ = writeln!(
            h,
            "<section id=\"{}\">\n<h2>{}</h2>\n<p class=\"settings\">{}</p>",
            esc(name),
            esc(&table::title(e)),
            esc(&chart::settings(e))
        );
        let _ = writeln!(
            h,
            "<h3>Time</h3>\n{}<h3>Cost (each strategy's own process tree)</h3>\n{}",
            html_table(&table::time_table(e, table::Style::Markdown)),
            html_table(&table::cost_table(e, table::Style::Markdown))
        );
        if table::has_stops(e) {
            let _ = writeln!(
                h,
                "<h3>Stopping</h3>\n{}",
                html_table(&table::stop_table(e, table::Style::Markdown))
            );
        }
        let notes = table::notes(e);
        if !notes.is_empty() {
            h.push_str("<ul>\n");
            for n in notes {
                let _ = writeln!(h, "<li>{}</li>", esc(&n));
            }
            h.push_str("</ul>\n");
        }
        let _ = writeln!(
            h,
            "<h3>Summary</h3>\n<pre>{}</pre>",
            esc(&table::summary(e).join("\n"))
        );
        for (kind, _) in chart::charts(e) {
            let file = dir.join(format!("{name}-{kind}.svg"));
            if let Ok(svg) = std::fs::read_to_string(&file) {
                let _ = writeln!(
                    h,
                    "<figure id=\"{}-{kind}\">{}</figure>",
                    esc(name),
                    svg.trim()
                );
            }
        }
        let _ = writeln!(
            h,
            "<p class=\"settings\">{}</p>\n</section>",
            esc(&table::legend(e))
        );
    }
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}
